"""onnxruntime sessions: created once, shared, on CUDA when it really works and on CPU otherwise.

The provider actually used is read back from the session (`get_providers()[0]`): onnxruntime silently
falls back to CPU when the CUDA provider fails to load, and this site always says which one it uses.
MODEL_DEVICE=cpu|cuda forces a choice; asking for cuda where it cannot run is an error, never a fallback.
"""
from __future__ import annotations

import json
import os
import platform
import threading
from dataclasses import dataclass
from pathlib import Path

import onnxruntime as ort

from models.paths import model_dir
from models.registry import get_spec

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"


class RuntimeUnavailable(RuntimeError):
    """The requested device or model cannot be served; the message says why and what to do."""


def requested_device() -> str:
    value = os.environ.get("MODEL_DEVICE", "auto").strip().lower() or "auto"
    if value not in {"auto", "cpu", "cuda"}:
        raise RuntimeUnavailable(f"MODEL_DEVICE={value!r} is not one of auto, cpu, cuda")
    return value


def cuda_compiled_in() -> bool:
    return CUDA in ort.get_available_providers()


def device() -> str:
    """'cuda' or 'cpu': what new sessions will use."""
    wanted = requested_device()
    if wanted == "cpu":
        return "cpu"
    if wanted == "cuda" and not cuda_compiled_in():
        raise RuntimeUnavailable(
            "MODEL_DEVICE=cuda but this onnxruntime has no CUDA provider "
            f"(available: {ort.get_available_providers()}); install onnxruntime-gpu (and not onnxruntime beside it)"
        )
    return "cuda" if cuda_compiled_in() else "cpu"


def cpu_threads() -> int:
    """Intra-op threads: one per physical core is best for these small matmuls (measured on 2 cores)."""
    configured = os.environ.get("ORT_NUM_THREADS")
    if configured:
        return max(1, int(configured))
    return max(1, min(os.cpu_count() or 1, 8))


@dataclass(frozen=True)
class SessionInfo:
    model_id: str
    variant: str
    path: str
    provider: str  # what onnxruntime actually uses, read back from the session
    precision: str


def session_options() -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = cpu_threads()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # warnings about unused initializers are noise in the site's log
    return options


_dlls_loaded = False


def _preload_cuda_libraries() -> None:
    """onnxruntime-gpu finds CUDA/cuDNN from the nvidia-* pip packages (as torch installs them) this way."""
    global _dlls_loaded
    if not _dlls_loaded and hasattr(ort, "preload_dlls"):
        try:
            ort.preload_dlls()
        except Exception:  # libraries elsewhere on the system: the session check below still applies
            pass
        _dlls_loaded = True


def create_session(path: Path, dev: str | None = None) -> ort.InferenceSession:
    dev = dev or device()
    if dev == "cuda":
        _preload_cuda_libraries()
    providers = [(CUDA, {"device_id": 0}), CPU] if dev == "cuda" else [CPU]
    session = ort.InferenceSession(str(path), sess_options=session_options(), providers=providers)
    used = session.get_providers()[0]
    if dev == "cuda" and used != CUDA:
        raise RuntimeUnavailable(
            f"CUDA was requested for {path.name} but onnxruntime runs it on {used}: the CUDA provider failed "
            "to load (check CUDA/cuDNN libraries); set MODEL_DEVICE=cpu to serve on CPU knowingly"
        )
    return session


_lock = threading.Lock()
_sessions: dict[tuple[str, str], tuple[ort.InferenceSession, SessionInfo]] = {}


def manifest(model_id: str) -> dict:
    path = model_dir(model_id) / "build.json"
    if not path.is_file():
        raise RuntimeUnavailable(
            f"model {model_id!r} is not exported yet (no {path}); run `python -m export`"
        )
    return json.loads(path.read_text())


def variant_file(model_id: str, variant: str) -> tuple[Path, str]:
    """The ONNX file of a variant (e.g. 'fp32', 'int8') and its precision label, from the build manifest."""
    variants = manifest(model_id).get("variants", {})
    if variant == "default":
        variant = preferred_variant(model_id, variants)
    if variant not in variants:
        raise RuntimeUnavailable(f"model {model_id!r} has no exported variant {variant!r} (have: {sorted(variants)})")
    entry = variants[variant]
    return model_dir(model_id) / entry["file"], entry.get("precision", variant)


def preferred_variant(model_id: str, variants: dict) -> str:
    """The variant to serve: LAB_VARIANT_<ID> or the manifest's default for this device."""
    key = "LAB_VARIANT_" + "".join(c if c.isalnum() else "_" for c in model_id).upper()
    chosen = os.environ.get(key)
    if chosen:
        gate = variants.get(chosen, {}).get("gate")
        if gate is not None and not gate.get("pass") and os.environ.get("LAB_ALLOW_FAILED_VARIANTS") != "1":
            raise RuntimeUnavailable(
                f"{key}={chosen} asks for a variant that failed its quality gate ({gate}); unset {key}, or set "
                "LAB_ALLOW_FAILED_VARIANTS=1 to serve it anyway (/health then says so)")
        return chosen
    dev = device()
    for name, entry in variants.items():
        if dev in entry.get("default_for", []):
            return name
    return next(iter(variants))


def get_session(model_id: str, variant: str = "default") -> ort.InferenceSession:
    return get_session_info(model_id, variant)[0]


def get_session_info(model_id: str, variant: str = "default") -> tuple[ort.InferenceSession, SessionInfo]:
    get_spec(model_id)  # unknown ids fail with the list of known ones
    key = (model_id, variant)
    with _lock:
        if key not in _sessions:
            path, precision = variant_file(model_id, variant)
            session = create_session(path)
            info = SessionInfo(model_id, variant, str(path), session.get_providers()[0], precision)
            _sessions[key] = (session, info)
        return _sessions[key]


def loaded_sessions() -> list[SessionInfo]:
    with _lock:
        return [info for _, info in _sessions.values()]


def runtime_summary() -> dict:
    """What the status line and /health show: device, providers, versions."""
    try:
        dev = device()
        error = None
    except RuntimeUnavailable as exc:
        dev, error = "unavailable", str(exc)
    return {
        "device": dev,
        "device_error": error,
        "available_providers": ort.get_available_providers(),
        "onnxruntime": ort.__version__,
        "cpu_threads": cpu_threads(),
        "python": platform.python_version(),
        "sessions": [info.__dict__ for info in loaded_sessions()],
    }
