"""A model file deleted, damaged or replaced while the site runs: that model answers with a clear message
naming the fix, /health lists it as unavailable, and the other models keep serving."""
from __future__ import annotations

import shutil

import gradio as gr
import pytest

from models import generation, runtime, tokenization
from models.decoder import DecoderGraph
from models.engine import Engine
from models.health import health_report
from models.runtime import RuntimeUnavailable
from models.sampling import SamplingSettings

GREEDY = SamplingSettings(max_new_tokens=3, temperature=0)


@pytest.fixture
def own_copy(tiny_llama, tiny_bert, tiny_registry, tiny_model_root, tmp_path, monkeypatch):
    """The tiny exports copied into a cache of this test's own, so damaging a file harms no other test."""
    for model_id in ("tiny-llama", "tiny-bert"):
        shutil.copytree(tiny_model_root / "onnx" / model_id, tmp_path / "onnx" / model_id)
    monkeypatch.setenv("LAB_MODEL_DIR", str(tmp_path))
    runtime._sessions.clear()
    runtime._problems.clear()
    yield tmp_path / "onnx"
    runtime._sessions.clear()
    runtime._problems.clear()
    tokenization._load.cache_clear()


def entry(model_id: str) -> dict:
    return next(m for m in health_report()["models"] if m["id"] == model_id)


def test_a_file_deleted_after_loading_makes_only_that_model_unavailable(own_copy):
    runtime.get_session("tiny-bert")
    runtime.get_session("tiny-llama")
    assert entry("tiny-bert")["available"] and entry("tiny-llama")["available"]
    (own_copy / "tiny-bert" / "model.onnx").unlink()
    with pytest.raises(RuntimeUnavailable, match=r"model.onnx was deleted on disk.*python -m export --only tiny-bert"):
        runtime.get_session("tiny-bert")
    report = health_report()
    assert "tiny-bert" in report["unavailable"] and report["status"] == "degraded"
    assert "deleted" in entry("tiny-bert")["problem"]
    assert entry("tiny-llama")["available"] and entry("tiny-llama")["problem"] is None
    assert runtime.get_session("tiny-llama").get_inputs()  # the other model keeps serving


def test_a_file_damaged_before_loading_is_refused_with_the_rebuild_command(own_copy):
    path = own_copy / "tiny-bert" / "model.onnx"
    path.write_bytes(b"\x00not an onnx graph" * 64)
    with pytest.raises(RuntimeUnavailable, match=r"could not be loaded from model.onnx.*damaged.*--force"):
        runtime.get_session("tiny-bert")
    assert "could not be loaded" in entry("tiny-bert")["problem"]
    assert entry("tiny-llama")["available"]


def test_a_file_overwritten_after_loading_stops_the_generate_tab_with_a_clear_message(own_copy, monkeypatch):
    lm = Engine(DecoderGraph.open("tiny-llama"))
    monkeypatch.setattr(generation, "get_generator", lambda model_id=None: lm)
    assert list(generation.generate("The cat", GREEDY, mode="completion"))[-1].n_tokens >= 1
    path = own_copy / "tiny-llama" / "model.onnx"
    path.write_bytes(path.read_bytes())  # same bytes, new file: no longer the file that was checked and loaded
    with pytest.raises(RuntimeUnavailable, match="changed on disk after the site loaded it"):
        list(generation.generate("The cat", GREEDY, mode="completion"))
    from demos import generate as generate_tab

    with pytest.raises(gr.Error, match="changed on disk"):
        list(generate_tab.generate_api("The cat", "completion", 3, 0))
    assert lm.active == 0
    assert "tiny-llama" in health_report()["unavailable"] and entry("tiny-bert")["available"]


def test_a_deleted_file_of_a_model_not_yet_loaded_shows_in_health_before_anyone_asks(own_copy):
    (own_copy / "tiny-llama" / "model.onnx").unlink()
    assert "missing its file model.onnx" in entry("tiny-llama")["problem"]
    with pytest.raises(RuntimeUnavailable, match="missing its file model.onnx"):
        runtime.get_session("tiny-llama")
