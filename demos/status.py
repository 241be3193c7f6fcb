"""The footer status line (device, provider, precision, versions) and the /health check."""
from __future__ import annotations

import html
from importlib.metadata import version

import gradio as gr

from models.health import health_report


def status_line() -> str:
    report = health_report()
    runtime = report["runtime"]
    device = {"cuda": "GPU (CUDA)", "cpu": "CPU"}.get(runtime["device"], runtime["device"])
    served = ", ".join(f"{m['id']}: {m['provider'].replace('ExecutionProvider', '')} {m['precision']}"
                       for m in report["models"] if m.get("loaded")) or "models load on first use"
    engines = "; ".join(f"{e['model']}: {'batched' if e['batched'] else 'per-sequence'} engine, {e['running']}/{e['slots']} "
                        f"running, {e['waiting']} waiting" for e in report.get("engines", []))
    served += f" · {engines}" if engines else ""
    served += "".join(f" · ⚠ {m['id']}: {m['warning']}" for m in report["models"] if m.get("warning"))
    return (f"<small>Serving on **{html.escape(device)}** · {html.escape(served)} · onnxruntime {runtime['onnxruntime']} · "
            f"gradio {version('gradio')} · {runtime['cpu_threads']} CPU threads · [health](/health)</small>")


def build(demo: gr.Blocks) -> None:
    line = gr.Markdown(elem_id="status-line")
    demo.load(status_line, None, line, api_visibility="private", show_progress="hidden")
