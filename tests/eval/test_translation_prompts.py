"""Prompt comparison: caching, scoring per cell, the per-direction choice and the variant gate."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

import eval.translation_prompts as prompts
from eval.translation import load_devset
from models import translate

ITEMS = [item for item in load_devset() if item["id"] in {"en-zh-001", "en-zh-041", "zh-en-001", "zh-en-041"}]


class WordTokenizer:
    def encode(self, text):
        return text.split() or [text]


def row(variant, design, direction, split, chrf):
    return {"variant": variant, "design": design, "direction": direction, "split": split, "chrf": chrf,
            "tok_s": 10.0, "n": 65}


def test_choice_is_the_best_dev_score_of_the_choice_variant_and_ignores_test_and_other_variants():
    pick, other = prompts.CHOICE_VARIANT, prompts.REFERENCE_VARIANT
    rows = [row(pick, "system-en", "en-zh", "dev", 30.0), row(pick, "user-en", "en-zh", "dev", 31.5),
            row(pick, "system-en", "en-zh", "test", 90.0), row(other, "few-shot", "en-zh", "dev", 99.0),
            row(pick, "system-en", "zh-en", "dev", 50.0), row(pick, "user-zh", "zh-en", "dev", 49.0)]
    choices = prompts.choose(rows)
    assert choices["en-zh"]["design"] == "user-en" and choices["en-zh"]["margin_over_next"] == 1.5
    assert choices["zh-en"]["design"] == "system-en" and choices["zh-en"]["n"] == 65


def test_ties_go_to_the_earlier_design_in_the_table():
    first, second = list(translate.PROMPT_DESIGNS)[:2]
    rows = [row(prompts.CHOICE_VARIANT, second, "en-zh", "dev", 40.0),
            row(prompts.CHOICE_VARIANT, first, "en-zh", "dev", 40.0)]
    assert prompts.choose(rows)["en-zh"]["design"] == first


def gate_rows(int8_en_zh, int8_zh_en, int8_zh_en_dev=60.0):
    rows = [row("int8", "system-en", "en-zh", "test", 45.0)]  # not the chosen design: ignored
    for split, zh_en in (("test", int8_zh_en), ("dev", int8_zh_en_dev)):
        rows += [row("fp32", "user-en", "en-zh", split, 40.0), row("fp32", "system-en", "zh-en", split, 60.0),
                 row("int8", "user-en", "en-zh", split, int8_en_zh), row("int8", "system-en", "zh-en", split, zh_en)]
    return rows


CHOICES = {"en-zh": {"design": "user-en"}, "zh-en": {"design": "system-en"}}


def test_gate_passes_within_one_chrf_in_both_directions_on_both_splits():
    verdict = prompts.gate(gate_rows(39.1, 60.5), CHOICES)["int8"]
    assert verdict["passed"] and verdict["directions"]["en-zh"]["test"]["delta"] == -0.9
    assert verdict["directions"]["en-zh"]["dev"]["delta"] == -0.9


def test_gate_fails_when_one_direction_drops_more_than_one_chrf():
    verdict = prompts.gate(gate_rows(40.0, 58.9), CHOICES)["int8"]
    assert not verdict["passed"] and "zh-en dev +0.00 test -1.10" in verdict["summary"]


def test_gate_fails_when_only_the_dev_split_drops_more_than_one_chrf():
    verdict = prompts.gate(gate_rows(40.0, 60.0, int8_zh_en_dev=58.5), CHOICES)["int8"]
    assert not verdict["passed"] and "zh-en dev -1.50" in verdict["summary"]


def test_gate_fails_a_variant_not_measured_with_the_chosen_design():
    rows = [r for r in gate_rows(40.0, 60.0) if not (r["variant"] == "int8" and r["split"] == "test")]
    verdict = prompts.gate(rows + [row("int8", "few-shot", "en-zh", "test", 50.0)], CHOICES)["int8"]
    assert not verdict["passed"] and "not measured" in verdict["summary"] and "en-zh test" in verdict["summary"]


def test_choice_reports_whether_fp32_ranks_the_same_design_first():
    pick, ref = prompts.CHOICE_VARIANT, prompts.REFERENCE_VARIANT
    rows = [row(pick, "system-en", "en-zh", "dev", 30.0), row(pick, "user-en", "en-zh", "dev", 31.5),
            row(ref, "system-en", "en-zh", "dev", 33.0), row(ref, "user-en", "en-zh", "dev", 32.0),
            row(pick, "system-en", "zh-en", "dev", 50.0), row(ref, "system-en", "zh-en", "dev", 51.0)]
    choices = prompts.choose(rows)
    assert choices["en-zh"]["fp32_agrees"] is False and list(choices["en-zh"]["fp32_dev_chrf"]) == ["system-en", "user-en"]
    assert choices["zh-en"]["fp32_agrees"] is True


@pytest.fixture
def fake_translator(monkeypatch):
    calls = []

    def fake_stream(text, source, target, should_stop=None, *, design=None, variant=None, max_new_tokens=None):
        calls.append((text, design, variant, max_new_tokens))
        yield SimpleNamespace(text=f"{design}:{text}", tokens=3)

    monkeypatch.setattr(translate, "get_translator", lambda variant=None: SimpleNamespace(tokenizer=WordTokenizer()))
    monkeypatch.setattr(translate, "translate_stream", fake_stream)
    return calls


def test_run_caches_outputs_and_a_rerun_translates_nothing(tmp_path, fake_translator):
    path = tmp_path / "outputs.jsonl"
    assert prompts.run("int8", ["system-en", "user-zh"], ITEMS, path) == 8
    assert prompts.run("int8", ["system-en", "user-zh"], ITEMS, path) == 0
    assert len(fake_translator) == 8
    cached = list(prompts.load_outputs(path).values())
    assert {entry["design"] for entry in cached} == {"system-en", "user-zh"}
    assert all(entry["cap"] == 2 * len(WordTokenizer().encode(item["reference"])) + 8
               for entry in cached for item in ITEMS if item["id"] == entry["id"])


def test_editing_a_design_invalidates_its_cached_outputs(tmp_path, fake_translator, monkeypatch):
    path = tmp_path / "outputs.jsonl"
    prompts.run("fp32", ["system-en"], ITEMS, path)
    original = translate.PROMPT_DESIGNS["system-en"]
    edited = translate.PromptDesign(original.name, original.description,
                                    lambda text, src, tgt: [{"role": "user", "content": "Translate: " + text}])
    monkeypatch.setitem(translate.PROMPT_DESIGNS, "system-en", edited)
    assert prompts.run("fp32", ["system-en"], ITEMS, path) == len(ITEMS)


def test_every_config_in_a_cell_is_scored_on_the_same_items(tmp_path, fake_translator):
    path = tmp_path / "outputs.jsonl"
    prompts.run("fp32", ["system-en", "user-en"], ITEMS, path)
    prompts.run("int8", ["system-en"], ITEMS[:1], path)  # int8 behind: only en-zh dev
    rows, incomplete = prompts.collect(ITEMS, prompts.load_outputs(path), WordTokenizer())
    cells = {(r["variant"], r["design"], r["direction"], r["split"]) for r in rows}
    assert ("fp32", "user-en", "zh-en", "test") in cells and ("int8", "system-en", "en-zh", "dev") in cells
    assert not [c for c in cells if c[0] == "int8" and c[2] == "zh-en"]
    assert all(r["n"] == 1 and r["of"] == 1 and r["tokens"] == 3 for r in rows)
    assert incomplete == []


def test_a_config_far_behind_is_listed_as_incomplete_not_shrinking_the_others(tmp_path, fake_translator):
    items = [item for item in load_devset() if item["split"] == "dev" and item["src_lang"] == "en"][:10]
    path = tmp_path / "outputs.jsonl"
    prompts.run("fp32", ["system-en"], items, path)
    prompts.run("int8", ["system-en"], items[:3], path)
    rows, incomplete = prompts.collect(items, prompts.load_outputs(path), WordTokenizer())
    assert [(r["variant"], r["n"], r["of"]) for r in rows] == [("fp32", 10, 10)]
    assert incomplete == [{"variant": "int8", "design": "system-en", "direction": "en-zh", "split": "dev", "n": 3}]


def test_round_robin_alternates_directions():
    order = [item["id"] for item in prompts.round_robin(load_devset())][:4]
    assert order == ["en-zh-001", "zh-en-001", "en-ja-001", "en-fr-001"]


def test_committed_results_choose_what_models_translate_serves():
    results = json.loads(prompts.RESULTS_PATH.read_text(encoding="utf-8"))
    for key in ("en-zh", "zh-en"):
        source, target = key.split("-")
        assert results["choices"][key]["design"] == translate.CHOSEN_DESIGNS[(source, target)]
        assert len(results["choices"][key]["dev_chrf"]) >= 4  # every design compared on the same dev items
        assert len(results["choices"][key]["fp32_dev_chrf"]) >= 4  # ... and in fp32, on those items too
    assert set(results["designs"]) == set(translate.PROMPT_DESIGNS)


def test_committed_gate_agrees_with_the_committed_scores():
    results = json.loads(prompts.RESULTS_PATH.read_text(encoding="utf-8"))
    gate_doc = json.loads(prompts.GATE_PATH.read_text(encoding="utf-8"))
    recomputed = prompts.gate(results["rows"], results["choices"])
    assert set(gate_doc["variants"]) == set(recomputed) and "int8" in recomputed
    for variant, verdict in recomputed.items():
        assert gate_doc["variants"][variant]["passed"] == verdict["passed"]
        assert gate_doc["variants"][variant]["directions"] == verdict["directions"]


def test_a_failed_variant_says_what_fp32_costs_in_speed():
    verdicts = {"int8": {"passed": False, "summary": "zh-en -2.0"}, "int4": {"passed": True, "summary": "ok"}}
    prompts.speed_cost(verdicts, {"file": "bench/results/x.json", "tok_s": {"fp32": 4.5, "int8": 13.2, "int4": 15.3}})
    assert "4.5 tok/s vs 13.2" in verdicts["int8"]["summary"] and verdicts["int4"]["summary"] == "ok"
    assert verdicts["int4"]["speed"] == {"tok_s": 15.3, "fp32_tok_s": 4.5, "source": "bench/results/x.json"}
