"""onnxruntime sessions: created once, shared, on CUDA when it really works and on CPU otherwise.

The provider actually used is read back from the session (`get_providers()[0]`): onnxruntime silently
falls back to CPU when the CUDA provider fails to load, and this site always says which one it uses.
MODEL_DEVICE=cpu|cuda forces a choice; asking for cuda where it cannot run is an error, never a fallback.

Only checked exports are served: build.json must hold a passing parity check (recorded by `python -m
export`), and a variant whose own check failed is refused. A model file that is deleted or changed on disk
after it was loaded, or that cannot be loaded, makes that one model unavailable with a message naming the
command that fixes it; the other models keep serving.
"""
from __future__ import annotations

import json
import os
import platform
import threading
from contextlib import contextmanager
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


def session_options(spin_wait: bool = True) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = cpu_threads()
    if not spin_wait:  # see ModelSpec.spin_wait
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
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


def create_session(path: Path, dev: str | None = None, spin_wait: bool = True) -> ort.InferenceSession:
    dev = dev or device()
    if dev == "cuda":
        _preload_cuda_libraries()
    providers = [(CUDA, {"device_id": 0}), CPU] if dev == "cuda" else [CPU]
    session = ort.InferenceSession(str(path), sess_options=session_options(spin_wait), providers=providers)
    used = session.get_providers()[0]
    if dev == "cuda" and used != CUDA:
        raise RuntimeUnavailable(
            f"CUDA was requested for {path.name} but onnxruntime runs it on {used}: the CUDA provider failed "
            "to load (check CUDA/cuDNN libraries); set MODEL_DEVICE=cpu to serve on CPU knowingly"
        )
    return session


_lock = threading.RLock()  # re-entrant: check_loaded runs both inside get_session_info and alone
_sessions: dict[tuple[str, str], tuple[ort.InferenceSession, SessionInfo]] = {}
_loading: dict[tuple[str, str], threading.Lock] = {}  # one per model variant: loads of different models overlap
_fingerprints: dict[tuple[str, str], tuple] = {}  # what the files of each loaded session looked like on disk
_problems: dict[str, str] = {}  # model id -> why it could not be served (last failure), for /health
_allow_unchecked = False


def manifest(model_id: str) -> dict:
    path = model_dir(model_id) / "build.json"
    if not path.is_file():
        raise RuntimeUnavailable(
            f"model {model_id!r} is not exported yet (no {path}); run `python -m export`"
        )
    try:
        return json.loads(path.read_text())
    except ValueError:
        raise RuntimeUnavailable(f"model {model_id!r} has a damaged build manifest ({path}); rebuild it with "
                                 f"`python -m export --only {model_id} --force`") from None


@contextmanager
def allow_unchecked():
    """Let the export's own parity check load graphs that have no recorded verdict yet. Sessions loaded
    meanwhile are dropped afterwards, so nothing unchecked stays cached for serving."""
    global _allow_unchecked
    before = set(_sessions)
    _allow_unchecked = True
    try:
        yield
    finally:
        _allow_unchecked = False
        with _lock:
            for key in set(_sessions) - before:
                _sessions.pop(key, None)
                _fingerprints.pop(key, None)


def refuse_unchecked(model_id: str, built: dict, variant: str) -> None:
    """RuntimeUnavailable unless the export's parity check passed and this variant's own check did not fail."""
    check = built.get("check")
    if not isinstance(check, dict):
        raise RuntimeUnavailable(
            f"model {model_id!r} was exported without a recorded parity check, so it is not served; run "
            f"`python -m export --only {model_id}` (it rebuilds and checks the model)")
    if not check.get("ok"):
        raise RuntimeUnavailable(
            f"model {model_id!r} failed its parity check against PyTorch ({check.get('summary', 'see build.json')}), "
            f"so it is not served; see `python -m export --check --only {model_id}` and rebuild with "
            f"`python -m export --only {model_id} --force`")
    entry = built.get("variants", {}).get(variant, {})
    # a variant (re)written after the check (python -m export.quantize) still carries its own gate verdict
    verdict = entry.get("check") or ({"pass": entry["gate"].get("pass"), "by": "quality gate against fp32"}
                                     if isinstance(entry.get("gate"), dict) else {})
    if verdict.get("pass") is False:
        raise RuntimeUnavailable(
            f"variant {variant!r} of model {model_id!r} failed its check ({verdict.get('by', 'quality gate')}), so "
            f"it is not served; choose another variant (LAB_VARIANT_*) or rebuild with "
            f"`python -m export --only {model_id} --force`")


def variant_file(model_id: str, variant: str) -> tuple[Path, str]:
    """The ONNX file of a variant (e.g. 'fp32', 'int8') and its precision label, from the build manifest."""
    built = manifest(model_id)
    variants = built.get("variants", {})
    if variant == "default":
        variant = preferred_variant(model_id, variants)
    if variant not in variants:
        raise RuntimeUnavailable(f"model {model_id!r} has no exported variant {variant!r} (have: {sorted(variants)})")
    if not _allow_unchecked:
        refuse_unchecked(model_id, built, variant)
    entry = variants[variant]
    path = model_dir(model_id) / entry["file"]
    if not path.is_file():
        raise RuntimeUnavailable(f"model {model_id!r} is missing its file {entry['file']} ({path.parent}); "
                                 f"rebuild it with `python -m export --only {model_id} --force`")
    return path, entry.get("precision", variant)


def _fingerprint(path: Path) -> tuple:
    """Size, modification time and inode of the graph and its external weights: cheap to read per request."""
    out = []
    for file in (path, path.with_name(path.name + "_data")):
        try:
            st = file.stat()
            out.append((file.name, st.st_size, st.st_mtime_ns, st.st_ino))
        except FileNotFoundError:
            out.append((file.name, None))
    return tuple(out)


def _changed_on_disk(key: tuple[str, str], path: Path) -> str | None:
    now, then = _fingerprint(path), _fingerprints.get(key)
    if then is None or now == then:
        return None
    for (name, *before), (_, *after) in zip(then, now):
        if before != after:
            how = "deleted" if after == [None] else "changed"
            return (f"model {key[0]!r} is unavailable: its file {name} was {how} on disk after the site loaded it; "
                    f"rebuild it with `python -m export --only {key[0]} --force`, then restart the site")
    return None


def _load(key: tuple[str, str]) -> tuple[ort.InferenceSession, SessionInfo]:
    model_id, variant = key
    path, precision = variant_file(model_id, variant)
    try:
        session = create_session(path, spin_wait=get_spec(model_id).spin_wait)
    except RuntimeUnavailable:
        raise
    except Exception as exc:  # onnxruntime raises its own types (InvalidProtobuf, Fail, ...) for bad files
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise RuntimeUnavailable(
            f"model {model_id!r} could not be loaded from {path.name} ({reason}); the file is damaged or "
            f"incomplete: rebuild it with `python -m export --only {model_id} --force`") from None
    _fingerprints[key] = _fingerprint(path)
    return session, SessionInfo(model_id, variant, str(path), session.get_providers()[0], precision)


def variant_env(model_id: str) -> str:
    """The environment variable that picks a model's served variant: LAB_VARIANT_<ID> (capitals, _ for the rest)."""
    return "LAB_VARIANT_" + "".join(c if c.isalnum() else "_" for c in model_id).upper()


def preferred_variant(model_id: str, variants: dict) -> str:
    """The variant to serve: LAB_VARIANT_<ID> or the manifest's default for this device."""
    chosen = os.environ.get(variant_env(model_id))
    if chosen:
        return chosen
    dev = device()
    for name, entry in variants.items():
        if dev in entry.get("default_for", []):
            return name
    return next(iter(variants))


def get_session(model_id: str, variant: str = "default") -> ort.InferenceSession:
    return get_session_info(model_id, variant)[0]


def get_session_info(model_id: str, variant: str = "default") -> tuple[ort.InferenceSession, SessionInfo]:
    """The shared session of a model variant, loaded on first use. RuntimeUnavailable (and /health says so)
    when the model cannot be served: not exported, unchecked, file missing, damaged, or changed since loaded."""
    get_spec(model_id)  # unknown ids fail with the list of known ones
    key = (model_id, variant)
    try:
        with _lock:
            if key in _sessions:
                check_loaded(model_id)
                return _sessions[key]
            loading = _loading.setdefault(key, threading.Lock())
        # Loading a large graph takes seconds to minutes on a busy CPU: only callers of this model wait for it
        # (a soak run saw classify time out behind the warm-up's load of the translator under one global lock).
        with loading:
            with _lock:
                if key in _sessions:
                    return _sessions[key]
            loaded = _load(key)
            with _lock:
                _sessions[key] = loaded
                _problems.pop(model_id, None)
                return loaded
    except RuntimeUnavailable as exc:
        _problems[model_id] = str(exc)
        raise


def check_loaded(model_id: str) -> None:
    """RuntimeUnavailable when a loaded session's files were deleted or changed on disk: the model stops
    serving (a copy in memory no longer matches the checked export). Callers that keep a session (the
    decoders) call this once per request; it is a few stat() calls."""
    with _lock:
        for key in [k for k in _sessions if k[0] == model_id]:
            problem = _changed_on_disk(key, Path(_sessions[key][1].path))
            if problem:
                _problems[model_id] = problem
                raise RuntimeUnavailable(problem)


def problem(model_id: str) -> str | None:
    """Why this model cannot be served right now, or None: what /health shows per model."""
    try:
        check_loaded(model_id)
        with _lock:
            loaded = any(k[0] == model_id for k in _sessions)
        if not loaded:
            variant_file(model_id, "default")  # exported, checked, and its file is there
    except RuntimeUnavailable as exc:
        return str(exc)
    return _problems.get(model_id)


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
