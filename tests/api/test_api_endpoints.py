"""Every public api_name of the live site through gradio_client, and Stop proven on the server (/health)."""
from __future__ import annotations

import math
import re
import time

import pytest

from tests.api.site_checks import assert_healthy, get_health, wait_for_active_generations

pytestmark = pytest.mark.integration

API_NAMES = {"/generate", "/classify", "/translate", "/attention", "/estimate_training"}
CJK = re.compile(r"[\u4e00-\u9fff]")


def generate(client, prompt, mode="chat", max_new_tokens=8, temperature=0.0, top_k=50, top_p=0.95,
             repetition_penalty=1.1, seed=1, stop="", system_prompt=""):
    return client.predict(prompt, mode, max_new_tokens, temperature, top_k, top_p, repetition_penalty, seed, stop,
                          system_prompt, api_name="/generate")


def test_the_public_api_is_exactly_the_five_documented_endpoints(client):
    info = client.view_api(print_info=False, return_format="dict")
    assert set(info["named_endpoints"]) == API_NAMES
    assert info["unnamed_endpoints"] == {}


def test_generate_answers_and_the_same_seed_reproduces_the_text(client):
    first = generate(client, "Write one sentence about startups.", max_new_tokens=16, temperature=0.8, seed=1234)
    again = generate(client, "Write one sentence about startups.", max_new_tokens=16, temperature=0.8, seed=1234)
    assert isinstance(first, str) and len(first.strip()) > 5
    assert first == again


def test_generate_completion_mode_streams_growing_text(client):
    job = client.submit("The three biggest costs of training a language model are", "completion", 12, 0, 50, 0.95,
                        1.1, 1, "", "", api_name="/generate")
    final = job.result(timeout=120)
    outputs = [o for o in job.outputs() if o]
    assert len(outputs) >= 2, "the answer should stream token by token"
    assert all(later.startswith(earlier) for earlier, later in zip(outputs, outputs[1:]))
    assert final == outputs[-1] and len(final) > len(outputs[0])


def test_generate_stop_string_ends_the_text_before_it(client):
    free = generate(client, "1, 2, 3, 4, 5, 6,", mode="completion", max_new_tokens=12)
    assert "9" in free, f"precondition: the model continues the count here, got {free!r}"
    stopped = generate(client, "1, 2, 3, 4, 5, 6,", mode="completion", max_new_tokens=12, stop="9")
    assert "9" not in stopped and free.startswith(stopped) and stopped.strip()


def test_stop_cancels_decoding_on_the_server(client, site_url):
    """Cancel a 1,024-token generation after its first tokens: /health must show the decode loop ending."""
    assert wait_for_active_generations(site_url, lambda n: n == 0, 60) == 0, "another generation is still running"
    job = client.submit("Once upon a time, in a city full of robots,", "completion", 1024, 0.8, 50, 0.95, 1.1, 7,
                        "", "", api_name="/generate")
    deadline = time.monotonic() + 90
    while not any(job.outputs()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert any(job.outputs()), "no streamed output within 90 s"
    assert get_health(site_url)[1]["active_generations"] >= 1, "the generation should still be decoding"
    job.cancel()
    cancelled_at = time.monotonic()
    active = wait_for_active_generations(site_url, lambda n: n == 0, 5)
    assert active == 0, f"still decoding {time.monotonic() - cancelled_at:.1f} s after Stop"
    streamed = len(job.outputs())
    time.sleep(1.0)
    assert len(job.outputs()) == streamed, "text kept arriving after Stop"
    assert streamed < 1024
    # the worker slot is free again: a new request is served at once
    assert generate(client, "Say hello.", max_new_tokens=3)
    assert_healthy(site_url)


def test_any_mix_of_cancels_returns_the_engine_to_idle_and_releases_its_kv_memory(client, site_url):
    """12 jobs submitted, some decoding, some still queued; all cancelled: nothing keeps decoding, the engine's
    KV buffer is given back, and the site answers at once."""
    assert wait_for_active_generations(site_url, lambda n: n == 0, 60) == 0, "another generation is still running"
    jobs = [client.submit(f"Story {i}: once upon a time,", "completion", 512, 0.8, 50, 0.95, 1.1, i, "", "",
                          api_name="/generate") for i in range(12)]
    deadline = time.monotonic() + 90
    while not any(job.outputs() for job in jobs) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert get_health(site_url)[1]["active_generations"] >= 1, "some generation should be decoding"
    for index, job in enumerate(jobs):
        job.cancel()
        if index == 5:
            time.sleep(0.5)  # cancels arrive spread out, some while others are being admitted
    assert wait_for_active_generations(site_url, lambda n: n == 0, 20) == 0, "cancelled sequences kept decoding"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        engines = get_health(site_url)[1]["engines"]
        if all(e["kv_bytes"] == 0 for e in engines):
            break
        time.sleep(0.1)
    assert all(e["kv_bytes"] == 0 and e["running"] == 0 for e in engines), engines
    assert generate(client, "Say hello.", max_new_tokens=3)


def test_classify_returns_three_probabilities_and_the_obvious_label(client):
    positive = client.predict("I absolutely love this, thank you so much! Best trip ever.", api_name="/classify")
    negative = client.predict("Two hours on hold and the refund still hasn't come through. Never again.",
                              api_name="/classify")
    for result in (positive, negative):
        confidences = {c["label"]: c["confidence"] for c in result["confidences"]}
        assert set(confidences) == {"negative", "neutral", "positive"}
        assert math.isclose(sum(confidences.values()), 1.0, abs_tol=1e-3)
    assert positive["label"] == "positive" and negative["label"] == "negative"


def test_translate_english_to_chinese_and_back(client):
    zh = client.predict("Good morning. The meeting has been moved to Thursday.", "en", "zh", api_name="/translate")
    assert CJK.search(zh), f"expected Chinese, got {zh!r}"
    en = client.predict("我们下周四开会。", "zh", "en", api_name="/translate")
    assert not CJK.search(en) and re.search(r"(?i)thursday|meeting", en), f"expected English, got {en!r}"


def test_translate_auto_detects_the_source_and_keeps_paragraph_breaks(client):
    job = client.submit("你好。\n\n谢谢。", "auto", "en", api_name="/translate")
    text = job.result(timeout=120)
    assert "\n\n" in text and not CJK.search(text), text
    assert len([o for o in job.outputs() if o]) >= 2, "the translation should stream"


@pytest.mark.parametrize("model_id, causal", [("minilm-l6-v2", False), ("smollm2-135m-instruct", True)])
def test_attention_returns_a_plotly_heatmap_and_a_row_stochastic_matrix(client, model_id, causal):
    plot, table = client.predict("The cat sat on the mat because it was tired.", model_id, 1, 2,
                                 api_name="/attention")
    assert plot["type"] == "plotly" and '"heatmap"' in plot["plot"]
    assert table["headers"][0] == "query \\ key"
    rows = [[float(x) for x in row[1:]] for row in table["data"]]
    assert len(rows) == len(table["headers"]) - 1 >= 10  # square: one row per token
    for i, row in enumerate(rows):
        assert math.isclose(sum(row), 1.0, abs_tol=2e-3), f"row {i} sums to {sum(row)}"
        if causal:
            assert all(x == 0 for x in row[i + 1:]), "a causal model cannot attend to later tokens"
    if not causal:
        assert any(x > 0 for x in rows[0][1:]), "an encoder attends both ways"


def test_attention_head_minus_one_averages_the_heads(client):
    _, average = client.predict("Startups win with focus.", "minilm-l6-v2", 0, -1, api_name="/attention")
    heads = [client.predict("Startups win with focus.", "minilm-l6-v2", 0, h, api_name="/attention")[1]
             for h in range(12)]
    mean_first_row = [sum(float(h["data"][0][j]) for h in heads) / 12 for j in range(1, len(heads[0]["headers"]))]
    assert [float(x) for x in average["data"][0][1:]] == pytest.approx(mean_first_row, abs=2e-4)


def test_estimate_training_llama2_7b(client):
    markdown, summary, breakdown, versus = client.predict(
        "6.74e9", "2e12", "H100-80GB", 1024, "", "", "", "llama2-7b", "on-demand", 1.2, 0.4, "", "",
        api_name="/estimate_training")
    assert summary["flops"] == pytest.approx(6 * 6.74e9 * 2e12, rel=1e-9)
    assert summary["gpus"] == 1024 and summary["wall_days"] == pytest.approx(summary["gpu_hours"] / 1024 / 24, rel=1e-6)
    assert summary["cost_usd"] > 0 and summary["total_cost_usd"] >= summary["compute_cost_usd"]
    assert "GPU-hours" in markdown and f"{summary['gpu_hours']:,.0f}" in markdown
    assert breakdown["type"] == versus["type"] == "plotly"


def test_estimate_training_accepts_human_sizes_and_empty_optional_fields(client):
    _, summary, _, _ = client.predict("7B", "2T", "A100-80GB", None, "", "", "", "custom", "spot", 1.2, 0.4, "", "",
                                      api_name="/estimate_training")
    assert summary["params"] == 7e9 and summary["tokens"] == 2e12
    assert "wall_days" not in summary  # no GPU count given
