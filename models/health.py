"""What is exported, what is loaded and on which provider: for /health and the status line.

A model is "available" when the site can serve it now: exported, its parity check recorded and passed,
its file present and unchanged since it was loaded. Otherwise "problem" says why and what to run.
"""
from __future__ import annotations

from models import runtime
from models.registry import REGISTRY
from models.runtime import RuntimeUnavailable, loaded_sessions, manifest, runtime_summary


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
        else:
            entry["loaded"] = False
        problem = runtime.problem(model_id)
        entry.update(available=problem is None, problem=problem)
        models.append(entry)
    from models.activity import GENERATIONS, TRANSLATIONS

    summary = runtime_summary()
    return {
        "status": "ok" if all(m["available"] for m in models) and not summary["device_error"] else "degraded",
        "unavailable": [m["id"] for m in models if not m["available"]],
        "runtime": summary,
        "models": models,
        "active_generations": GENERATIONS.value,
        "active_translations": TRANSLATIONS.value,
    }
