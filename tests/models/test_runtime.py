"""Sessions say which provider they really use; a forced device never silently falls back."""
from __future__ import annotations

import pytest

from models import runtime
from models.runtime import RuntimeUnavailable


def test_cuda_forced_without_a_cuda_build_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("MODEL_DEVICE", "cuda")
    monkeypatch.setattr(runtime, "cuda_compiled_in", lambda: False)
    with pytest.raises(RuntimeUnavailable, match="onnxruntime-gpu"):
        runtime.device()


def test_an_unknown_device_value_is_rejected(monkeypatch):
    monkeypatch.setenv("MODEL_DEVICE", "tpu")
    with pytest.raises(RuntimeUnavailable, match="MODEL_DEVICE"):
        runtime.device()


def test_cpu_forced_is_cpu_even_with_cuda(monkeypatch):
    monkeypatch.setenv("MODEL_DEVICE", "cpu")
    monkeypatch.setattr(runtime, "cuda_compiled_in", lambda: True)
    assert runtime.device() == "cpu"


def test_sessions_are_created_once_and_report_their_provider(tiny_llama, tiny_registry):
    first, info = runtime.get_session_info("tiny-llama")
    again, _ = runtime.get_session_info("tiny-llama")
    assert first is again
    assert info.provider == "CPUExecutionProvider" == first.get_providers()[0]
    assert info.precision == "fp32"


def test_a_model_that_is_not_exported_says_how_to_export(tiny_registry, monkeypatch, tmp_path):
    monkeypatch.setenv("LAB_MODEL_DIR", str(tmp_path))
    with pytest.raises(RuntimeUnavailable, match="python -m export"):
        runtime.get_session("tiny-llama")


def test_cuda_requested_but_session_on_cpu_is_an_error(tiny_llama, tiny_registry, monkeypatch):
    """onnxruntime falls back to CPU with only a warning when CUDA fails to load; we refuse instead."""
    from models.paths import model_dir

    class FakeSession:
        def __init__(self, *args, **kwargs):
            pass

        def get_providers(self):
            return ["CPUExecutionProvider"]

    monkeypatch.setattr(runtime.ort, "InferenceSession", FakeSession)
    with pytest.raises(RuntimeUnavailable, match="CUDA was requested"):
        runtime.create_session(model_dir("tiny-llama") / "model.onnx", "cuda")


def test_unknown_model_ids_list_the_known_ones():
    with pytest.raises(ValueError, match="known:"):
        runtime.get_session("gpt-17")


def test_only_the_classifier_turns_thread_spinning_off():
    from models.registry import REGISTRY

    assert {spec.id for spec in REGISTRY.values() if not spec.spin_wait} == {"sentiment-minilm"}
    assert runtime.session_options(spin_wait=False).get_session_config_entry("session.intra_op.allow_spinning") == "0"
    with pytest.raises(RuntimeError):  # the decoders keep onnxruntime's default (spinning on)
        runtime.session_options().get_session_config_entry("session.intra_op.allow_spinning")
