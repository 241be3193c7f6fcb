"""What is exported, what is loaded and on which provider: for /health and the status line."""
from __future__ import annotations

from models.registry import REGISTRY
from models.runtime import loaded_sessions, manifest, runtime_summary, RuntimeUnavailable


def failed_gate_warning(model_id: str, path: str) -> str | None:
    """A loud note when the served file is a variant that failed its quality gate (LAB_ALLOW_FAILED_VARIANTS=1)."""
    try:
        variants = manifest(model_id).get("variants", {})
    except RuntimeUnavailable:
        return None
    for name, entry in variants.items():
        gate = entry.get("gate")
        if path.endswith("/" + entry["file"]) and gate is not None and not gate.get("pass"):
            return f"serving variant {name}, which FAILED its quality gate"
    return None


def health_report() -> dict:
    loaded = {info.model_id: info for info in loaded_sessions()}
    models = []
    for model_id, spec in REGISTRY.items():
        entry = {"id": model_id, "task": spec.task}
        try:
            entry["variants"] = sorted(manifest(model_id).get("variants", {}))
            entry["exported"] = True
        except RuntimeUnavailable:
            entry["exported"] = False
        if model_id in loaded:
            entry.update(loaded=True, provider=loaded[model_id].provider, precision=loaded[model_id].precision)
            warning = failed_gate_warning(model_id, loaded[model_id].path)
            if warning:
                entry["warning"] = warning
        else:
            entry["loaded"] = False
        models.append(entry)
    from models.engine import active_sequences, engine_stats

    summary = runtime_summary()
    return {
        "status": "ok" if all(m["exported"] for m in models) and not summary["device_error"] else "degraded",
        "runtime": summary,
        "models": models,
        "active_generations": active_sequences(),
        "engines": engine_stats(),
    }
