"""大模型创业 lab — the Gradio site. This file only assembles the tabs that demos/ modules build.

Each demos module exposes `build(demo)`, called inside its own `gr.Tab`. A page may be opened on a
given tab with `?tab=<id>` (the content pages link into demos this way).
"""
from __future__ import annotations

import gradio as gr

from demos import attention, classify, costs_tab, generate, guide, status, translate

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


def select_tab_from_url(request: gr.Request):
    """Open the tab named by ?tab=... (deep links from the content pages); unknown ids keep the default."""
    wanted = (request.query_params.get("tab") or "").strip().lower() if request else ""
    return gr.Tabs(selected=wanted) if wanted in TAB_IDS else gr.Tabs()


def build_site() -> gr.Blocks:
    with gr.Blocks(title="大模型创业 lab · LLM startup lab") as demo:
        gr.Markdown("# 大模型创业 lab · LLM startup lab\n"
                    "Try real transformer models (served by ONNX Runtime) and work out what building on them costs. "
                    "在浏览器里试用真实的 Transformer 模型，并估算基于大模型创业的成本。")
        with gr.Tabs() as tabs:
            for label, tab_id, build in TABS:
                with gr.Tab(label, id=tab_id):
                    build(demo)
        status.build(demo)
        demo.load(select_tab_from_url, None, tabs, api_visibility="private")
    return demo


demo = build_site()

if __name__ == "__main__":
    demo.queue(default_concurrency_limit=2, max_size=64).launch(server_name="0.0.0.0", server_port=7860)
