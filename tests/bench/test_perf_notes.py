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


RUNS = {"amd_second": "classify-cpu-20261207-152902.json", "amd_new": "classify-cpu-20261207-131257.json",
        "amd_old": "classify-cpu-20261203-114854.json", "intel": "classify-cpu-20261202-203454.json"}


def _f(value: float, digits: int = 0) -> str:
    return f"{value:.{digits}f}"


def test_the_classifier_numbers_in_the_text_are_those_of_the_files_it_names():
    text = " ".join(DOC.read_text().split())  # line breaks inside sentences do not matter
    for name in RUNS.values():
        int8, fp32 = _row(name, "onnxruntime int8"), _row(name, "onnxruntime fp32")
        expected = (f"{_f(int8['p50_ms'], 2)} vs {_f(fp32['p50_ms'], 2)} ms, and {_f(int8['sentences_per_s'])} vs "
                    f"{_f(fp32['sentences_per_s'])} sentences/s")
        assert expected in text, (name, expected)
    torch = {k: _row(n, "pytorch float32") for k, n in RUNS.items()}
    fp32 = {k: _row(n, "onnxruntime fp32") for k, n in RUNS.items()}
    sps = {k: _f(r["sentences_per_s"]) for k, r in fp32.items()}
    torch_sps = {k: _f(r["sentences_per_s"]) for k, r in torch.items()}
    assert f"graph did {sps['amd_old']} sentences/s against PyTorch's {torch_sps['amd_old']}" in text
    assert f"{sps['amd_new']} against {torch_sps['amd_new']} and then {sps['amd_second']} against " \
           f"{torch_sps['amd_second']} on the AMD host of 2026-12-07" in text
    assert f"{sps['intel']} against {torch_sps['intel']}" in text
    own = [_f(_row(RUNS[k], "pytorch float32, own process")["sentences_per_s"]) for k in ("amd_new", "amd_second")]
    assert f"did {own[0]} and {own[1]} in the two runs on the 2026-12-07 host" in text
    took = [_f(torch[k]["p50_ms"], 2) for k in ("amd_second", "amd_new", "amd_old", "intel")]
    assert f"took {', '.join(took[:3])} and {took[3]} ms" in text
    p50 = {k: _f(r["p50_ms"], 2) for k, r in fp32.items()}
    assert f"{p50['amd_second']} ms (fp32) in the second AMD run of 2026-12-07, {p50['amd_new']} ms in the two " \
           f"before it, {p50['intel']} ms on the Intel run" in text
    assert p50["amd_new"] == p50["amd_old"]  # "the two before it"


def test_what_fusions_and_thread_settings_change_is_what_the_files_say():
    text = " ".join(DOC.read_text().split())
    unfused = {k: _row(n, "onnxruntime fp32, unfused export") for k, n in RUNS.items()}
    fp32 = {k: _row(n, "onnxruntime fp32") for k, n in RUNS.items()}
    gain = [unfused[k]["sentences_per_s"] / fp32[k]["sentences_per_s"] - 1 for k in RUNS]
    fused_faster_alone = sum(fp32[k]["p50_ms"] < unfused[k]["p50_ms"] for k in RUNS)
    assert min(gain) > 0, "the text says the unfused export was faster batched in every run"
    assert f"in all four runs the unfused export was {min(gain):.0%} to {max(gain):.0%} faster batched".replace(
        "% to", " to").replace("% faster", " % faster") in text
    assert f"the fused graph was faster in {['no', 'one', 'two', 'three', 'all four'][fused_faster_alone]} of them" \
           in text
    run = RUNS["amd_second"]
    row = {c: _row(run, c) for c in ("onnxruntime fp32", "onnxruntime fp32, one thread", "onnxruntime fp32, spinning",
                                     "onnxruntime fp32, one-thread sessions side by side",
                                     "onnxruntime fp32 (served) while SmolLM2 decodes",
                                     "onnxruntime fp32 (spinning threads) while SmolLM2 decodes")}
    served, one = row["onnxruntime fp32"], row["onnxruntime fp32, one thread"]
    assert (f"On one intra-op thread the fp32 graph did {_f(one['sentences_per_s'])} sentences/s, on the served two "
            f"{_f(served['sentences_per_s'])} ({served['sentences_per_s'] / one['sentences_per_s']:.2f}×), and two "
            f"one-thread sessions side by side, each running its share of the texts, "
            f"{_f(row['onnxruntime fp32, one-thread sessions side by side']['sentences_per_s'])}") in text
    spin = row["onnxruntime fp32, spinning"]
    assert f"faster ({_f(spin['p50_ms'], 2)} vs {_f(served['p50_ms'], 2)} ms) but not a batch " \
           f"({_f(spin['sentences_per_s'])})" in text
    assert spin["sentences_per_s"] < served["sentences_per_s"]  # "not a batch"
    decoding = [_f(row[f"onnxruntime fp32 ({w}) while SmolLM2 decodes"]["sentences_per_s"])
                for w in ("spinning threads", "served")]
    assert f"cost the classifier {decoding[0]} vs {decoding[1]} sentences/s" in text


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
