"""Measured numbers on the guide pages: every one comes from a committed results file, none is hand-copied."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from content import measured, pages

ALL_PAGES = [pages.get_page(page_id, lang) for lang in pages.LANGS for page_id in pages.page_ids(lang)]

# A sentence that speaks of the project's own runs ...
_PROJECT = re.compile(r"this project|this site|the site's|our (?:benchmark|measurement|run)|本项目|本站|实测|"
                      r"SmolLM2|MiniLM|Qwen2\.5", re.I)
# ... must not carry a speed, latency or quality number of its own: those come from placeholders.
_NUMBER = r"\d[\d,]*(?:\.\d+)?"
_MEASURE = re.compile(
    rf"(?<![\w.]){_NUMBER}(?:\s*(?:tokens?/s|tok/s|sentences?/s|ms\b|毫秒)|×(?!\s*\d))"
    rf"|每秒\s*{_NUMBER}\s*个"
    rf"|(?:accuracy|macro-F1|F1|准确率|召回率|recall)[^\d{{}}\n]{{0,12}}\d?\.\d+"
    rf"|(?<![\w.])\d?\.\d+\s*(?:accuracy|macro-F1|F1)", re.I)
# A computed ceiling is arithmetic, not a measurement ("the bandwidth ceiling is about 12,400 tokens/s").
_CEILING = re.compile(r"ceiling|limit|bound|上限", re.I)


def hand_copied_measurements(text: str) -> list[str]:
    """Sentences of a page that quote a project-measured number without a placeholder."""
    found = []
    for sentence in re.split(r"(?<=[.;。；])\s+|\n", measured.PLACEHOLDER.sub("", text)):
        if not _PROJECT.search(sentence):
            continue
        for match in _MEASURE.finditer(sentence):
            if not _CEILING.search(sentence[max(0, match.start() - 40):match.start()]):
                found.append(sentence.strip())
                break
    return found


@pytest.mark.parametrize("page", ALL_PAGES, ids=lambda p: f"{p.lang}-{p.id}")
def test_no_page_quotes_a_project_measurement_without_a_placeholder(page):
    assert hand_copied_measurements(page.body) == []


@pytest.mark.parametrize("sentence", [
    # the hand-copied lines this check replaced (review of issue 17), in both languages
    "Measured by this project on a 2-core CPU (2026-11-22, SmolLM2-135M greedy decoding): PyTorch 15 tokens/s, "
    "ONNX Runtime fp32 20 tokens/s, dynamic int8 23 tokens/s, identical text from all three.",
    "this project measured SmolLM2-135M at 40 tokens/s with a 46 ms time to first token",
    "frozen MiniLM plus logistic regression reached 0.85 accuracy on positive/negative tweets "
    "(measured by this project).",
    "本项目在 2 核 CPU 上实测，SmolLM2-135M 贪心解码：PyTorch 每秒 15 个 token。",
    "H100 上 MiniLM（批大小 1、长度 32）：PyTorch eager fp16 2.97 毫秒。",
    "冻结 MiniLM 加逻辑回归，正负面二分类准确率 0.85（本项目测量）。",
])
def test_the_check_catches_hand_copied_measurements(sentence):
    assert hand_copied_measurements(sentence)


def test_the_check_leaves_placeholders_ceilings_and_public_numbers_alone():
    text = ("SmolLM2 ran at {{measured:generate.cpu.int4.tok_s}} tokens/s on this project's CPU. "
            "The bandwidth ceiling is about 12,400 tokens/s. vLLM reached 2-4× the throughput of its peers.")
    assert hand_copied_measurements(text) == []


@pytest.mark.parametrize("page", ALL_PAGES, ids=lambda p: f"{p.lang}-{p.id}")
def test_every_placeholder_renders_as_the_value_in_its_results_file(page):
    keys = measured.keys_in(page.body)
    rendered = pages.render(page)
    assert "{{" not in rendered
    for key in keys:
        value = measured.resolve(key)
        kind, path, _ = measured.METRICS[key]
        raw = json.loads(value.path.read_text(encoding="utf-8"))
        assert measured._lookup(raw, path) == value.value  # the number shown is the number in the file
        assert value.text in rendered
        assert measured.relative(value.path) in rendered  # and the page names the file, device and date
        assert value.date in rendered


def test_pages_that_quote_measurements_use_both_languages_alike():
    for page_id in pages.page_ids("en"):
        en, zh = (pages.get_page(page_id, lang) for lang in ("en", "zh"))
        assert sorted(measured.keys_in(en.body)) == sorted(measured.keys_in(zh.body)), page_id


def test_the_pages_quote_the_served_classifier_and_the_benchmarks():
    used = {key for page in ALL_PAGES for key in measured.keys_in(page.body)}
    assert {"sentiment.test.accuracy", "sentiment.test.macro_f1", "generate.cpu.int4.tok_s",
            "gpu.smollm2.ort_fp32.tok_s"} <= used


@pytest.mark.parametrize("key", sorted(measured.METRICS))
def test_every_metric_in_the_table_resolves_against_the_committed_files(key):
    value = measured.resolve(key)
    assert value.text and value.date and value.path.is_file()


def _page(body: str) -> pages.Page:
    text = f"---\nid: t\ntitle: T\nnav: T\norder: 1\nupdated: 2026-12\nsummary: s\n---\n## A {{#a}}\n\n{body}\n"
    return pages.parse_page(text, Path("t.md"), "en")


@pytest.mark.parametrize("body", ["Speed {{measured:no.such.key}} tokens/s.",
                                  "Speed {{measure:generate.cpu.int4.tok_s}}.",
                                  "Speed {{ measured:generate.cpu.int4.tok_s }}."])
def test_an_unresolvable_or_misspelt_placeholder_fails_instead_of_rendering_blank(body):
    with pytest.raises(ValueError):
        pages.render(_page(body))


def _write(root: Path, name: str, date: str, int4: float | None, streams: int = 0) -> None:
    rows = [{"runtime": "pytorch", "variant": "float32", "tok_s": 10.0}]
    if int4 is not None:
        rows.append({"runtime": "onnxruntime", "variant": "int4", "tok_s": int4})
    env = {"device_name": f"cpu of {name}", "date": f"{date}T10:00:00+0000"}
    doc = {"benchmark": "generate", "environment": env,
           "settings": {"streams": streams, "tokens": 64}, "rows": rows}
    path = root / "bench" / "results" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))


def test_the_newest_results_file_of_a_kind_wins(tmp_path):
    _write(tmp_path, "generate-cpu-20261122-180000.json", "2026-11-22", 18.0)
    _write(tmp_path, "generate-cpu-20261201-090000.json", "2026-12-01", 30.0)
    _write(tmp_path, "generate-cpu-20261202-090000.json", "2026-12-02", 99.0, streams=8)  # another kind
    value = measured.resolve("generate.cpu.int4.tok_s", root=tmp_path)
    assert (value.text, value.date, value.device) == ("30.0", "2026-12-01", "cpu of generate-cpu-20261201-090000.json")


def test_a_newer_file_without_the_field_falls_back_to_the_newest_that_has_it(tmp_path):
    _write(tmp_path, "generate-cpu-20261122-180000.json", "2026-11-22", 18.0)
    _write(tmp_path, "generate-cpu-20261201-090000.json", "2026-12-01", None)
    assert measured.resolve("generate.cpu.int4.tok_s", root=tmp_path).date == "2026-11-22"
    assert measured.resolve("generate.cpu.torch.tok_s", root=tmp_path).date == "2026-12-01"


def test_a_missing_results_file_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no results file"):
        measured.resolve("generate.cpu.int4.tok_s", root=tmp_path)
