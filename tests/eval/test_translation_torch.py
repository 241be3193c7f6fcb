"""The PyTorch reference (eval/) and the served ONNX path give the same greedy translation."""
from __future__ import annotations

import pytest

from models import translate


@pytest.mark.integration
def test_onnx_translation_equals_pytorch_greedy():
    from eval.translation_torch import torch_translate_text

    sentence = "Startups must control their inference costs."
    assert translate.translate_text(sentence, "en", "zh", variant="fp32") == torch_translate_text(sentence, "en", "zh")
