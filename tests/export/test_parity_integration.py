"""`python -m export --check` on the real packaged models: fp32 ONNX matches PyTorch at two lengths."""
from __future__ import annotations

import pytest

from export.parity import ATTENTION_TOL, LOGIT_TOL, check_model, format_report
from models.registry import REGISTRY

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("model_id", [m for m in REGISTRY if REGISTRY[m].export.task != "custom"])
def test_onnx_matches_pytorch(model_id):
    report = check_model(model_id)
    print(format_report(report))
    assert len(report["lengths"]) >= 2
    for diffs in report["lengths"].values():
        main = diffs.get("logits_max_abs_diff", diffs.get("hidden_max_abs_diff"))
        assert main <= LOGIT_TOL
        assert diffs["attention_max_abs_diff"] <= ATTENTION_TOL
    if "greedy_identical" in report:
        assert report["greedy_identical"], "32 greedy tokens differ from PyTorch"
    assert report["ok"]
