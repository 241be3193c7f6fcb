import json
import subprocess
import sys
from pathlib import Path

import pytest

import eval.translation as translation
from eval.translation import bleu_tokenizer, compare, load_devset, main, score, select

ITEMS = load_devset()
REFERENCES = [item["reference"] for item in ITEMS]


def test_perfect_hypotheses_score_100_in_every_direction():
    result = score(ITEMS, REFERENCES)
    assert set(result["directions"]) == {"en-zh", "zh-en", "en-ja", "en-fr", "en-de", "en-es", "en-ko"}
    for stats in result["directions"].values():
        assert stats["chrf"] == 100.0
        assert stats["bleu"] == 100.0


def test_garbage_scores_low():
    result = score(ITEMS, ["lorem ipsum dolor"] * len(ITEMS))
    for stats in result["directions"].values():
        assert stats["chrf"] < 15
        assert stats["bleu"] < 5


def test_partly_right_scores_between_garbage_and_perfect():
    items = [item for item in ITEMS if item["src_lang"] == "zh"]
    half = [ref.rsplit(" ", len(ref.split()) // 2)[0] for ref in (i["reference"] for i in items)]
    chrf = score(items, half)["directions"]["zh-en"]["chrf"]
    assert 20 < chrf < 100


def test_bleu_tokenizers_per_target():
    assert bleu_tokenizer("zh") == "zh"
    assert bleu_tokenizer("ja") == bleu_tokenizer("ko") == "char"
    assert bleu_tokenizer("en") == bleu_tokenizer("fr") == "13a"
    directions = score(ITEMS, REFERENCES)["directions"]
    assert directions["en-zh"]["bleu_tokenize"] == "zh"
    assert "tok:zh" in directions["en-zh"]["bleu_signature"]
    assert directions["en-ja"]["bleu_tokenize"] == "char"
    assert directions["zh-en"]["bleu_tokenize"] == "13a"
    assert directions["en-zh"]["n"] == sum(item["tgt_lang"] == "zh" for item in ITEMS)


def test_chinese_bleu_gives_credit_for_partly_right_unspaced_text():
    # With the 13a tokenizer an unspaced Chinese sentence is one token, so one wrong character means BLEU 0.
    item = {"id": "x", "src_lang": "en", "tgt_lang": "zh", "domain": "d", "source": "s",
            "reference": "我们上个月完成了种子轮融资，计划再招聘三名工程师。"}
    hypothesis = "我们上个月完成了种子轮融资，打算再招聘三名工程师。"
    assert score([item], [hypothesis])["directions"]["en-zh"]["bleu"] > 30


def test_missing_hypotheses_count_as_empty_and_lengths_must_match():
    assert score(ITEMS[:1], [None])["directions"]["en-zh"]["chrf"] == 0.0
    with pytest.raises(ValueError, match="hypotheses"):
        score(ITEMS, REFERENCES[:-1])


def test_compare_identical_and_different_outputs():
    same = compare(ITEMS, REFERENCES, list(REFERENCES))
    assert same["identical_share"] == 1.0
    assert same["max_abs_delta_chrf"] == 0.0
    changed = list(REFERENCES)
    changed[0] = "完全不同的输出"
    different = compare(ITEMS, REFERENCES, changed)
    first = different["directions"]["en-zh"]
    assert first["identical_share"] == pytest.approx((first["n"] - 1) / first["n"], abs=1e-4)
    assert first["abs_delta_chrf"] > 0
    assert different["directions"]["zh-en"]["abs_delta_chrf"] == 0.0


def test_select_keeps_the_first_n_of_every_direction():
    chosen = select(ITEMS, limit=2)
    assert len(chosen) == 2 * 7
    assert [item["id"] for item in chosen[:2]] == ["en-zh-001", "en-zh-002"]
    assert {item["id"] for item in select(ITEMS, directions=["en-fr"])} == {f"en-fr-00{i}" for i in range(1, 6)}


def test_load_devset_rejects_bad_lines(tmp_path):
    path = tmp_path / "bad.jsonl"
    good = dict(ITEMS[0])
    path.write_text(json.dumps({**good, "reference": " "}) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="reference"):
        load_devset(path)
    path.write_text(json.dumps({**good, "tgt_lang": "xx"}) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="tgt_lang"):
        load_devset(path)
    path.write_text((json.dumps(good) + "\n") * 2, encoding="utf-8")
    with pytest.raises(ValueError, match="duplicate"):
        load_devset(path)


@pytest.fixture
def fake_backends(monkeypatch):
    # keyed by target too: one English sentence is a source in every en->x smoke direction
    references = {(item["source"], item["tgt_lang"]): item["reference"] for item in ITEMS}
    calls = []

    def perfect(text, source, target):
        calls.append((text, source, target))
        return references[text, target]

    def slightly_off(text, source, target):
        return references[text, target] if text != ITEMS[0]["source"] else "别的译文"

    monkeypatch.setitem(translation.BACKENDS, "onnx", perfect)
    monkeypatch.setitem(translation.BACKENDS, "torch", slightly_off)
    return calls


def test_main_both_backends_writes_json(tmp_path, fake_backends, capsys):
    out = tmp_path / "scores.json"
    assert main(["--backend", "both", "--limit", "3", "--json", str(out)]) == 0
    assert len(fake_backends) == 3 * 7
    assert fake_backends[0] == (ITEMS[0]["source"], "en", "zh")
    results = json.loads(out.read_text(encoding="utf-8"))
    assert results["n_items"] == 21
    assert all(d["chrf"] == 100.0 for d in results["backends"]["onnx"]["directions"].values())
    assert results["backends"]["torch"]["directions"]["en-zh"]["chrf"] < 100.0
    assert results["agreement"]["directions"]["en-zh"]["identical_share"] == pytest.approx(2 / 3, abs=1e-3)
    assert results["agreement"]["directions"]["zh-en"]["identical_share"] == 1.0
    assert results["outputs"]["torch"]["en-zh-001"] == "别的译文"
    printed = capsys.readouterr().out
    assert "en-zh" in printed and "identical" in printed


def test_main_json_flag_alone_writes_the_default_results_file(tmp_path, fake_backends, monkeypatch):
    default = tmp_path / "results" / "translation_scores.json"
    monkeypatch.setattr(translation, "RESULTS_PATH", default)
    assert main(["--limit", "1", "--json"]) == 0
    assert json.loads(default.read_text(encoding="utf-8"))["backends"]["onnx"]["errors"] == []


def test_main_records_backend_errors_and_exits_1(tmp_path, monkeypatch):
    def failing(text, source, target):
        raise ValueError("model exploded")

    monkeypatch.setitem(translation.BACKENDS, "onnx", failing)
    out = tmp_path / "scores.json"
    assert main(["--limit", "1", "--direction", "zh-en", "--json", str(out)]) == 1
    results = json.loads(out.read_text(encoding="utf-8"))
    assert results["backends"]["onnx"]["errors"] == [{"id": "zh-en-001", "error": "ValueError: model exploded"}]
    assert results["backends"]["onnx"]["directions"]["zh-en"]["chrf"] == 0.0


def test_scoring_does_not_import_the_model_stack():
    code = (
        "import sys, eval.translation as t; items = t.load_devset(); "
        "t.score(items, [i['reference'] for i in items]); "
        "print(sorted(m for m in ('models.translate', 'torch', 'onnxruntime', 'gradio') if m in sys.modules))"
    )
    repo_root = Path(translation.__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=repo_root)
    assert result.stdout.strip() == "[]"
