"""bench/classify.py's PyTorch worker process (the "own process" row) on the real exported classifier."""
from __future__ import annotations

import numpy as np

from bench import classify


def test_the_worker_runs_pytorch_without_the_benchmarks_passive_openmp_and_matches_onnxruntime(monkeypatch):
    from models import sentiment
    from models.paths import model_dir

    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")  # what `python -m bench` sets for its own process
    worker = classify.TorchProcess("cpu")
    try:
        first, second = worker(), worker()  # one process serves every round
    finally:
        worker.close()
    assert worker.proc.returncode == 0
    assert first["omp_wait_policy"] is None  # PyTorch as people run it
    sentences = classify.texts()
    assert first["probs"].shape == (len(sentences), len(sentiment.LABELS)) and first["sentences_per_s"] > 0
    assert np.array_equal(first["probs"], second["probs"])
    ort_fp32 = classify.bucketed(classify.onnx_session(model_dir(sentiment.MODEL_ID) / "model.onnx"))(sentences)
    assert np.abs(first["probs"] - ort_fp32).max() <= 1e-4  # the export's parity tolerance
