import gradio as gr
import pytest

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
    assert {"flops", "gpu_hours", "mfu", "gpu", "wall_days", "cost_usd"} <= set(summary)
    assert summary["gpu"] == "H100-80GB" and "GPU-hours" in md
    assert breakdown.data and size_plot.data


def test_attention_convention_appears_with_a_preset():
    md, summary, *_ = costs_tab.estimate_training("6.74e9", "2e12", "A100-80GB", None, "", "", "", "llama2-7b")
    assert "flops_with_attention" in summary and "12·L·H·Q·T" in md


@pytest.mark.parametrize("params,gpu", [("-1", "H100"), ("abc", "H100"), ("7e9", "H900"), ("nan", "H100")])
def test_bad_input_is_a_gradio_error_not_a_crash(params, gpu):
    with pytest.raises(gr.Error):
        costs_tab.estimate_training(params, "2e12", gpu, 8)


def test_load_handler_reads_query_params():
    updates = costs_tab.load_from_url(FakeRequest({"tab": "costs", "params": "7e9", "gpu": "tpu-v4", "gpus": "64",
                                                   "mfu": "bogus"}))
    preset, params, active, tokens, gpu, gpus, mfu, price = updates
    assert params == "7e9" and gpu == "TPUv4" and gpus == 64
    assert isinstance(mfu, dict) and "value" not in mfu  # a bad value leaves the field untouched


def test_sub_tabs_compute(demo):
    md, fig = costs_tab.plan_memory("llama2-7b", "", "adam_mixed", 3, 1, 8, 1, 4096, "selective", "A100-80GB")
    assert "Minimum GPUs" in md and fig.data
    md, fig = costs_tab.scaling_advice("1e24")
    assert "20·N" in md and fig.data
    md, fig = costs_tab.serving_estimate("llama3-8b", "H100-80GB", 1, 16, 4096, 2.0, "", 1000)
    assert "per 1M output tokens" in md
    with pytest.raises(gr.Error):
        costs_tab.scaling_advice("-5")


def test_calibration_and_sources_are_shown():
    fig = costs_tab.calibration_figure()
    assert any(trace.name == "2× band" for trace in fig.data)
    text = costs_tab.calibration_markdown() + costs_tab.sources_markdown()
    assert "leave-one-out" in text and "datasheet" in text and "as of" in text
