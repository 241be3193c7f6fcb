"""The footer status line (backend, device, provider, precision, versions) and the /health check."""
from __future__ import annotations

import html
from importlib.metadata import version

import gradio as gr

from models.health import health_report


def backend_text(backend: dict) -> str:
    """'in-process' or 'Ray Serve at ADDR: decoder 2/2 running, ...' (replica counts by state, from Serve)."""
    if backend["name"] != "ray":
        return "in-process models"
    if "applications" not in backend:
        return f"Ray Serve at {backend['address']}: unreachable"
    parts = []
    for app, info in sorted(backend["applications"].items()):
        states = info["replica_states"]
        running = states.get("RUNNING", 0)
        others = ", ".join(f"{n} {s.lower()}" for s, n in sorted(states.items()) if s != "RUNNING" and n)
        parts.append(f"{app} {running} running" + (f" ({others})" if others else "") + f" [{info['status'].lower()}]")
    return f"Ray Serve at {backend['address']}: " + ("; ".join(parts) or "no applications deployed")


def status_line() -> str:
    report = health_report()
    runtime = report["runtime"]
    device = {"cuda": "GPU (CUDA)", "cpu": "CPU"}.get(runtime["device"], runtime["device"])
    served = ", ".join(f"{m['id']}: {m['provider'].replace('ExecutionProvider', '')} {m['precision']}"
                       for m in report["models"] if m.get("loaded")) or "models load on first use"
    engines = "; ".join(f"{e['model']}: {'batched' if e['batched'] else 'per-sequence'} engine, {e['running']}/{e['slots']} "
                        f"running, {e['waiting']} waiting" for e in report.get("engines", []))
    served += f" · {engines}" if engines else ""
    return (f"<small>Serving on **{html.escape(device)}** · {html.escape(backend_text(report['backend']))} · "
            f"{html.escape(served)} · onnxruntime {runtime['onnxruntime']} · "
            f"gradio {version('gradio')} · {runtime['cpu_threads']} CPU threads · [health](/health)</small>")


def build(demo: gr.Blocks) -> None:
    line = gr.Markdown(elem_id="status-line")
    demo.load(status_line, None, line, api_visibility="private", show_progress="hidden")
