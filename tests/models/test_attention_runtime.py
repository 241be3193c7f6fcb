"""Attention read from the served ONNX graphs of the real models (integration)."""
from __future__ import annotations

import numpy as np
import pytest

from models.attention import attention_for_text

pytestmark = pytest.mark.integration
TEXT = "The cat sat on the mat because it was tired. 猫坐在垫子上，因为它累了。"


@pytest.mark.parametrize("model_id,causal", [("minilm-l6-v2", False), ("smollm2-135m-instruct", True)])
def test_every_row_is_a_probability_distribution(model_id, causal):
    result = attention_for_text(TEXT, model_id)
    att = result.attentions
    assert att.ndim == 4 and att.shape[2] == att.shape[3] == len(result.tokens)
    np.testing.assert_allclose(att.sum(-1), 1.0, atol=1e-3)
    assert (att >= 0).all()
    assert result.causal is causal
    upper = np.triu(np.ones(att.shape[-2:], dtype=bool), k=1)
    if causal:
        assert np.abs(att[..., upper]).max() < 1e-6  # no token attends to the future
    else:
        assert att[..., upper].max() > 1e-3  # bidirectional: later tokens do get attention


def test_long_input_is_truncated_to_512_tokens_and_says_so():
    result = attention_for_text("word " * 2000, "minilm-l6-v2")
    assert len(result.tokens) == 512 and result.truncated
