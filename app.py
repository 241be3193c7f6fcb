"""大模型创业 lab — the Gradio site. This file only assembles the tabs that demos/ modules build.

Each demos module exposes `build(demo)`, called inside its own `gr.Tab`. `?tab=<id>` opens a tab (the
content pages link into the demos this way). `python app.py` is what a Hugging Face Space runs: it
exports the packaged models to ONNX first if they are missing (see export/), then serves on port 7860.
"""
from __future__ import annotations

import argparse
import os
import threading

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from demos import attention, classify, costs_tab, downloads, generate, guide, status, translate
from models.health import health_report

# (label, id, builder). Ids are part of the public URL scheme: keep them stable.
TABS = [
    ("Generate 生成", "generate", generate.build),
    ("Classify 情感分类", "classify", classify.build),
    ("Translate 翻译", "translate", translate.build),
    ("Attention 注意力", "attention", attention.build),
    ("Cost calculator 成本计算", "costs", costs_tab.build),
    ("Guide 创业指南", "guide", guide.build),
]
TAB_IDS = [tab_id for _, tab_id, _ in TABS]
MAX_UPLOAD = "5mb"  # batch CSVs; anything larger is refused before it reaches a handler
# Beyond this many waiting requests visitors get a clear "queue is full" at once instead of a minute's wait:
# with 2 decoder slots on 2 cores, a 20-client load test queued generate/translate for 40-55 s at 48.
QUEUE_SIZE = int(os.environ.get("LAB_QUEUE_SIZE", "16"))
# Gradio keeps a copy of every uploaded and downloadable file: drop those older than the age demos/downloads.py
# gives its own files (an hour; LAB_TEMP_MAX_AGE_S), checked six times per age, so temp files stay bounded.
DELETE_CACHE = (max(10, downloads.MAX_AGE_S // 6), downloads.MAX_AGE_S)


def select_tab_from_url(request: gr.Request):
    """Open the tab named by ?tab=... (deep links from the content pages); unknown ids keep the default."""
    wanted = (request.query_params.get("tab") or "").strip().lower() if request else ""
    return gr.Tabs(selected=wanted) if wanted in TAB_IDS else gr.Tabs()


def build_site() -> gr.Blocks:
    with gr.Blocks(title="大模型创业 lab · LLM startup lab", delete_cache=DELETE_CACHE) as demo:
        gr.Markdown("# 大模型创业 lab · LLM startup lab\n"
                    "Try real transformer models, served by ONNX Runtime, and work out what building on them costs. "
                    "在浏览器里试用真实的 Transformer 模型，并估算基于大模型创业的成本。")
        # before the tabs, so the browser-stored language is read on every visit; handed to the Guide explicitly
        language = guide.language_state()
        builders = {"guide": lambda blocks: guide.build(blocks, language)}
        with gr.Tabs() as tabs:
            for label, tab_id, build in TABS:
                with gr.Tab(label, id=tab_id):
                    builders.get(tab_id, build)(demo)
        status.build(demo)
        demo.load(select_tab_from_url, None, tabs, api_visibility="private", show_progress="hidden")
    demo.queue(default_concurrency_limit=2, max_size=QUEUE_SIZE)
    return demo


def create_app(demo: gr.Blocks) -> FastAPI:
    app = FastAPI()

    @app.get("/health")
    def health() -> JSONResponse:
        """Which models are exported and loaded, on which provider; 503 when the site cannot serve them."""
        report = health_report()
        return JSONResponse(report, status_code=200 if report["status"] == "ok" else 503)

    return gr.mount_gradio_app(app, demo, path="", max_file_size=MAX_UPLOAD, show_error=False,
                               footer_links=["api", "gradio"])


def warm_up() -> None:
    """Load the ONNX sessions in the background so the first visitor does not wait for them."""
    from models.warmup import load_all

    threading.Thread(target=load_all, name="warm-up", daemon=True).start()


demo = build_site()

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Run the site")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    parser.add_argument("--no-export", action="store_true", help="do not export missing models first")
    args = parser.parse_args()
    if not args.no_export:
        from export.bootstrap import ensure_models

        ensure_models()
    warm_up()
    import uvicorn

    uvicorn.run(create_app(demo), host=args.host, port=args.port, log_level="warning")
