"""docs/perf-notes.md's classifier section: its error table is generated, its other numbers are the files'."""
from __future__ import annotations

import json
import re

from bench.classify_int8 import error_table
from bench.readme_table import newest
from models.paths import REPO_ROOT

DOC = REPO_ROOT / "docs" / "perf-notes.md"
RESULTS = REPO_ROOT / "bench" / "results"


def _row(name: str, contender: str) -> dict:
    rows = json.loads((RESULTS / name).read_text())["rows"]
    return next(r for r in rows if r.get("contender", r.get("graph")) == contender)


def test_the_int8_error_table_is_generated_from_the_newest_results_file():
    shown = re.search(r"<!-- int8-error-table:start -->\n(.*?)\n<!-- int8-error-table:end -->", DOC.read_text(), re.S)
    assert shown, "docs/perf-notes.md lost its int8-error-table markers"
    assert shown.group(1).strip() == error_table(newest("classify-int8-cpu-*.json")[1]).strip(), \
        "run `python -m bench.classify_int8 --table` and paste its output between the markers"


def test_the_classifier_numbers_in_the_text_are_those_of_the_files_it_names():
    text = " ".join(DOC.read_text().split())  # line breaks inside sentences do not matter
    for name, lines in {
        "classify-cpu-20261207-131257.json": "{int8:p50} vs {fp32:p50} ms, and {int8:sps} vs {fp32:sps} sentences/s",
        "classify-cpu-20261203-114854.json": "{int8:p50} vs {fp32:p50} ms, and {int8:sps} vs {fp32:sps} sentences/s",
        "classify-cpu-20261202-203454.json": "{int8:p50} vs {fp32:p50} ms, and {int8:sps} vs {fp32:sps} sentences/s",
    }.items():
        rows = {"int8": _row(name, "onnxruntime int8"), "fp32": _row(name, "onnxruntime fp32")}
        expected = re.sub(r"\{(\w+):(\w+)\}", lambda m: (
            f"{rows[m.group(1)]['p50_ms']:.2f}" if m.group(2) == "p50"
            else f"{rows[m.group(1)]['sentences_per_s']:.0f}"), lines)
        assert expected in text, (name, expected)
    amd_new, amd_old, intel = (f"classify-cpu-{d}.json" for d in ("20261207-131257", "20261203-114854", "20261202-203454"))
    torch = {n: _row(n, "pytorch float32") for n in (amd_new, amd_old, intel)}
    fp32 = {n: _row(n, "onnxruntime fp32") for n in (amd_new, amd_old, intel)}
    assert (f"graph did {fp32[amd_old]['sentences_per_s']:.0f} sentences/s against PyTorch's "
            f"{torch[amd_old]['sentences_per_s']:.0f}") in text
    assert f"{fp32[amd_new]['sentences_per_s']:.0f} against {torch[amd_new]['sentences_per_s']:.0f}" in text
    assert f"{fp32[intel]['sentences_per_s']:.0f} against {torch[intel]['sentences_per_s']:.0f}" in text
    own = _row(amd_new, "pytorch float32, own process")
    assert f"did {own['sentences_per_s']:.0f} on the 2026-12-07 host" in text
    took = [f"{torch[n]['p50_ms']:.2f}" for n in (amd_new, amd_old, intel)]
    assert f"took {took[0]}, {took[1]} and {took[2]} ms" in text
    assert f"{fp32[amd_new]['p50_ms']:.2f} ms (fp32) in both AMD runs" in text
    assert f"{fp32[amd_old]['p50_ms']:.2f}" == f"{fp32[amd_new]['p50_ms']:.2f}"  # "both"
    assert f"{fp32[intel]['p50_ms']:.2f} ms on the Intel run" in text


def test_the_classifier_int8_numbers_are_those_of_the_gate_and_search_files():
    text = " ".join(DOC.read_text().split())
    gate = json.loads((REPO_ROOT / "export" / "results" / "gate-sentiment-minilm-int8.json").read_text())
    assert gate["pass"] and f"max |Δp| {gate['max_abs_diff']} | pass, not default" in text
    search = json.loads((RESULTS / "classify-int8-cpu-20261207-135534.json").read_text())
    rows = {r["graph"]: r for r in search["rows"]}
    every = rows["all int8"]
    assert f"tweets' labels {every['tweets_label_agreement']:.0%} same".replace("%", " %") in text
    assert f"max |Δp| {every['tweets_max_dp']:.3f} | **fail**" in text and f"up to {every['tweets_max_dp']:.3f}" in text
    assert f"passes is {rows['greedy int8 set']['int8_nodes']} of {search['settings']['quantizable_nodes']} nodes" in text
    ffn_in = [e["tweets_max_dp"] for e in search["settings"]["sensitivity"]
              if re.search(r"layer\.[0-3]/intermediate/dense", e["node"])]
    assert f"by {min(ffn_in):.3f} to {max(ffn_in):.3f}" in text
    simulated = search["settings"]["simulated_every_node"]
    tensor, token = simulated["tensor"], simulated["token"]
    assert (f"up to {tensor['check_max_dp']:.3f} on the check set and {tensor['tweets_max_dp']:.3f} on the tweets, "
            f"close to quantize_dynamic's {every['check_max_dp']:.3f} and {every['tweets_max_dp']:.3f}") in text
    assert f"With one scale per token: {token['check_max_dp']:.3f} and {token['tweets_max_dp']:.3f}, still" in text
    assert f"still {token['check_max_dp'] / 0.01:.1f} to {token['tweets_max_dp'] / 0.01:.1f} times the 0.01 gate" in text
    assert min(token["check_max_dp"], token["tweets_max_dp"]) > search["settings"]["gate_max_dp"]
