import gradio as gr
import pytest

from costs import calibration, urlstate
from demos import costs_tab


class FakeRequest:
    def __init__(self, query):
        self.query_params = query


@pytest.fixture(scope="module")
def demo():
    with gr.Blocks() as blocks:
        costs_tab.build(blocks)
    return blocks


def test_tab_builds_inside_blocks_and_registers_the_api(demo):
    api_names = {fn.api_name for fn in demo.fns.values()}
    assert "estimate_training" in api_names
    handler = next(fn for fn in demo.fns.values() if fn.api_name == "estimate_training")
    assert handler.fn is costs_tab.estimate_training
    assert "Args:" in costs_tab.estimate_training.__doc__


def test_api_handler_returns_the_cli_keys():
    md, summary, breakdown, size_plot = costs_tab.estimate_training("7e9", "2e12", "H100 SXM", 1024, "0.4", "2.5")
    assert {"flops", "gpu_hours", "mfu", "gpu", "wall_days", "cost_usd", "storage_cost_usd"} <= set(summary)
    assert summary["gpu"] == "H100-80GB" and "GPU-hours" in md
    assert breakdown.data and size_plot.data


def test_default_mfu_shows_the_error_band_next_to_gpu_hours():
    md, summary, *_ = costs_tab.estimate_training("7e9", "2e12", "H100-80GB", 1024, "", "")
    assert f"{summary['gpu_hours_low']:,.0f}-{summary['gpu_hours_high']:,.0f}" in md


def test_attention_convention_appears_with_a_preset_without_rescaling_hours():
    md, summary, *_ = costs_tab.estimate_training("6.74e9", "2e12", "A100-80GB", None, "", "", "", "llama2-7b")
    assert "flops_with_attention" in summary and "12·L·H·Q·T" in md and "not rescaled" in md


@pytest.mark.parametrize("params,gpu", [("-1", "H100"), ("abc", "H100"), ("7e9", "H900"), ("nan", "H100"),
                                        ("1,5B", "H100")])
def test_bad_input_is_a_gradio_error_not_a_crash(params, gpu):
    with pytest.raises(gr.Error):
        costs_tab.estimate_training(params, "2e12", gpu, 8)


def _updates_by_calc(updates):
    tabs, rest = updates[0], updates[1:]
    out, i = {}, 0
    for calc, fields in urlstate.FIELDS.items():
        out[calc] = dict(zip(fields, rest[i:i + len(fields)]))
        i += len(fields)
    return tabs, out


def test_load_handler_reads_train_query_params():
    updates = costs_tab.load_from_url(FakeRequest({"tab": "costs", "params": "7e9", "gpu": "tpu-v4", "gpus": "64",
                                                   "mfu": "bogus"}))
    _, by_calc = _updates_by_calc(updates)
    train = by_calc["train"]
    assert train["params"] == "7e9" and train["gpu"] == "TPUv4" and train["gpus"] == 64
    assert isinstance(train["mfu"], dict) and "value" not in train["mfu"]  # a bad value leaves the field untouched


def test_load_handler_selects_the_calculator_of_the_link():
    updates = costs_tab.load_from_url(FakeRequest({"tab": "costs", "calc": "breakeven", "params": "8e9",
                                                   "util": "0.3", "api_in": "0.15", "in_tokens": "2e9"}))
    tabs, by_calc = _updates_by_calc(updates)
    assert tabs.selected == "breakeven"
    even = by_calc["breakeven"]
    assert even["params"] == "8e9" and even["util"] == 0.3 and even["in_tokens"] == "2e9"
    assert even["preset"] == costs_tab.CUSTOM  # a bare parameter count switches the model to custom
    assert all(isinstance(v, dict) and "value" not in v for v in by_calc["train"].values())


def test_new_sub_tabs_compute(demo):
    md, fig, data = costs_tab.finetune_estimate("llama-65b", "", "L40S", 1, "qlora", "sft", 64, "all-linear",
                                                "1e8", 1, 512, "", True)
    assert "fits" in md and data["fits"] and fig.data and "published runs" in md
    md, data = costs_tab.fleet_estimate("llama3-70b", "", "H100-80GB", "10", 1020, 129, 0.45, 0.04, "fp16", "fp16",
                                        None, "", 0.5)
    assert "per 1M output tokens" in md and data["gpus"] >= 1 and "Databricks" in md
    md, fig, data = costs_tab.breakeven_estimate("custom", "8e9", "H100-80GB", 1, 0.5, "0.15", "0.6", "2", "2e9",
                                                 "5e8", "fp16")
    assert "Break-even" in md and fig.data and data["cheaper"] in ("api", "self-host")
    assert costs_tab.apply_api_model("gpt-4o") == ("2.5", "10")


def test_old_sub_tabs_compute(demo):
    md, fig = costs_tab.plan_memory("llama2-7b", "", "adam_mixed", 3, 1, 8, 1, 4096, "selective", "A100-80GB")
    assert "Minimum GPUs" in md and fig.data
    md, fig = costs_tab.scaling_advice("1e24")
    assert "20·N" in md and fig.data
    md, fig = costs_tab.serving_estimate("llama3-8b", "H100-80GB", 1, 16, 4096, "fp16", "", 1000)
    assert "per 1M output tokens" in md
    md, _ = costs_tab.serving_estimate("llama3-70b", "L4", 1, 1, 2048, "fp16", "", 1000)
    assert "does not fit" in md and "per 1M output tokens" not in md
    with pytest.raises(gr.Error):
        costs_tab.scaling_advice("-5")
    with pytest.raises(gr.Error):
        costs_tab.plan_memory("llama2-7b", "", "adam_mixed", 3, 3, 8, 1, 4096, "selective", "A100-80GB")
    with pytest.raises(gr.Error):
        costs_tab.fleet_estimate("llama3-70b", "", "H100-80GB", "0", 1020, 129, 0.45, 0.04, "fp16", "fp16",
                                 None, "", 0.5)


def test_calibration_and_sources_quote_the_committed_results_file():
    report = calibration.committed_report()
    fig = costs_tab.views.calibration_figure()
    assert any(trace.name == "2× band" for trace in fig.data)
    text = costs_tab.views.calibration_markdown()
    loo = report["leave_one_out"]
    assert f"{loo['median_ratio_error']:.3f}×" in text and f"{loo['share_within_2x']:.0%}" in text
    assert f"{report['error_band']['low']:.2f}-{report['error_band']['high']:.2f}×" in text
    sources = costs_tab.views.sources_markdown() + costs_tab.sviews.api_prices_markdown()
    assert "datasheet" in sources and "as of" in sources and "Splitwise" in sources and "pricing" in sources


def test_tab_calls_no_private_helpers():
    import inspect
    source = inspect.getsource(costs_tab) + inspect.getsource(costs_tab.views) + inspect.getsource(costs_tab.sviews)
    assert "urlstate._" not in source and '" in r' not in source and "' in r" not in source
