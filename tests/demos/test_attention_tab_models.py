"""The Attention tab's handlers with the real exported models: "Show attention" and "Translate & align"
end to end through models.attention, nothing stubbed (integration)."""
from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest

from demos import attention as tab

pytestmark = pytest.mark.integration
CJK = re.compile(r"[\u4e00-\u9fff]")
VIEW_ARGS = dict(layer=0, head=-1, selected=[], mode="raw", per_head_scale=True, image_format="png")


def _translate(text: str, source: str = "en", target: str = "zh"):
    a = VIEW_ARGS
    return tab.run_translation(text, source, target, a["layer"], a["head"], a["selected"], a["mode"],
                               a["per_head_scale"], a["image_format"])


@pytest.fixture(scope="module")
def aligned():
    return _translate("The cat sat on the mat.")


def test_show_attention_preselects_the_last_word_and_names_the_graph():
    a = VIEW_ARGS
    out = tab.run_model("The cat sat on the mat because it was tired.", "minilm-l6-v2", a["layer"], a["head"],
                        "heatmap", a["selected"], a["mode"], a["per_head_scale"], a["image_format"])
    analysis, tokens, note = out[0], out[3], out[8]
    assert analysis.result.tokens[0] == "[CLS]" and analysis.result.tokens[-1] == "[SEP]"
    assert tokens["value"] == [analysis.result.tokens.index("tired")]  # not [SEP] (special) nor "." (punctuation)
    assert "weights from the fp32 ONNX graph" in note


def test_translate_and_align_shows_generated_tokens_against_the_source(aligned):
    analysis, view, table, csv_path, note = aligned[0], aligned[4], aligned[6], aligned[7], aligned[8]
    result = analysis.result
    assert view["value"] == "alignment" and result.model_id == "qwen2.5-coder-0.5b-instruct"
    assert result.variant == "fp32" and "weights from the fp32 ONNX graph" in note
    source = [result.tokens[i] for i in range(*result.source_span)]
    assert "".join(source).replace("␣", " ").strip() == "The cat sat on the mat."
    target = "".join(result.tokens[i] for i in range(*result.target_span))
    assert CJK.search(target), target  # a Chinese translation was generated and aligned
    assert list(table.columns)[1:] == [analysis.labels[i] for i in range(*result.source_span)]
    assert len(table) == result.target_span[1] - result.target_span[0]
    np.testing.assert_allclose(table.iloc[:, 1:].sum(axis=1), 1.0, atol=1e-3)
    with open(csv_path, encoding="utf-8-sig", newline="") as handle:
        assert len(list(csv.reader(handle))) == len(table) + 1
    # the special tokens of the chat prompt come from the tokenizer's mask
    assert result.special[result.tokens.index("<|im_start|>")]
    assert not any(result.special[i] for i in range(*result.source_span))


def test_the_cat_row_attends_to_cat_more_than_to_any_other_source_word(aligned):
    table = aligned[6]
    cat_rows = [i for i, label in enumerate(table.iloc[:, 0]) if "猫" in label]
    assert cat_rows, list(table.iloc[:, 0])
    weights = table.iloc[cat_rows[0], 1:].astype(float)
    assert weights.idxmax().strip() == "cat", weights.to_dict()


def test_after_translating_every_view_redraws_from_the_kept_run(aligned):
    analysis = aligned[0]
    for view in tab.VIEWS:
        plot, table, csv_path, note = tab.rerender(analysis, 3, 5, view, [], "raw", True, "png", 0, 23)
        assert json.loads(plot.plot)["data"], view
        assert table is not None and csv_path.endswith(".csv"), view


def test_translate_and_align_rejects_text_past_its_limit():
    with pytest.raises(tab.gr.Error, match="alignment works on up to 400 characters"):
        _translate("word " * 100)
