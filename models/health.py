"""What is exported, what is loaded and on which provider, and which backend serves: for /health and the
status line.

A model is "available" when the site can serve it now: exported, its parity check recorded and passed,
its file present and unchanged since it was loaded. Otherwise "problem" says why and what to run.
"""
from __future__ import annotations

from models import runtime
from models.backend import decoder_slots, get_backend
from models.engine import engine_stats
from models.registry import REGISTRY
from models.runtime import RuntimeUnavailable, loaded_sessions, manifest, runtime_summary
from models.translate import TRANSLATION_MODEL


def _local_models() -> list[dict]:
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
    return models


def _replica_models(replicas: list[dict]) -> list[dict]:
    """The served models as the replicas report them (the front itself loads none)."""
    models = {}
    for replica in replicas:
        for model_id, info in replica["models"].items():
            entry = models.setdefault(model_id, {"id": model_id, "task": REGISTRY[model_id].task, "exported": True,
                                                 "loaded": True, **info, "replicas": 0})
            entry["replicas"] += 1
    return list(models.values())


def health_report() -> dict:
    backend = get_backend()
    summary = runtime_summary()
    served = backend.health()
    if backend.name == "ray":
        models = _replica_models(served.get("replicas", []))
        ok = served["ok"]
    else:
        models = _local_models()
        ok = all(m["available"] for m in models) and not summary["device_error"]
    engines = engine_stats() if backend.name != "ray" else []
    return {
        "status": "ok" if ok else "degraded",
        "unavailable": [m["id"] for m in models if not m.get("available", True)],
        "backend": served,
        "runtime": summary,
        "models": models,
        "active_generations": backend.active_generations(),
        "active_translations": sum(e["running"] + e["waiting"] for e in engines if e["model"] == TRANSLATION_MODEL),
        "engines": engines,
        "decoder_slots": decoder_slots(),  # streams per decoder model the site runs at once; more wait in the queue
    }
