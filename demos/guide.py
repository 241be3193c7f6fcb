"""Guide tab: the site's bilingual pages (content/) with a page switcher and a remembered language.

Deep links: ``?tab=guide&doc=<page-id>&lang=zh|en[#anchor]`` open a page (app.py selects the tab, the
load handler here picks page and language). The language toggle is kept in the browser (gr.BrowserState);
a ``lang=`` in the URL wins over it for that visit without overwriting the stored choice.
"""
from __future__ import annotations

import gradio as gr

from content import pages
from demos.common import user_error

LANG_CHOICES = [("中文", "zh"), ("English", "en")]
LANG_STORAGE_KEY = "llm-lab-guide-lang"
# Rendered pages come from our own Markdown files (content/), not from users, so HTML is not sanitized:
# Gradio's sanitizer would also force target=_blank on the site-relative ?tab= links and open new windows.
_SANITIZE_HTML = False
_LATEX = [{"left": "$$", "right": "$$", "display": True}]
# The anchor (#section) in a deep link can only be scrolled to once the page text has been rendered.
_SCROLL_TO_HASH_JS = """() => {
  const id = decodeURIComponent(window.location.hash.slice(1));
  if (id) setTimeout(() => document.getElementById(id)?.scrollIntoView({behavior: "smooth"}), 300);
}"""


def _valid_lang(lang: str | None) -> str | None:
    lang = (lang or "").strip().lower()
    return lang if lang in pages.LANGS else None


def _page_selector(page_id: str, lang: str) -> gr.Radio:
    return gr.Radio(choices=[(p.nav, p.id) for p in pages.list_pages(lang)], value=page_id)


def show_page(page_id: str, lang: str) -> str:
    """Markdown of one page; unknown ids or languages become a clear error in the UI."""
    try:
        return pages.render(pages.get_page(page_id, lang))
    except ValueError as exc:
        raise user_error(exc) from exc


def open_from_url(stored_lang: str | None, request: gr.Request | None):
    """On page load: language from ?lang= (else the remembered one), page from ?doc= (else the first)."""
    params = dict(request.query_params) if request is not None else {}
    lang = _valid_lang(params.get("lang")) or _valid_lang(stored_lang) or pages.DEFAULT_LANG
    ids = pages.page_ids(lang)
    wanted = (params.get("doc") or "").strip().lower()
    page_id = wanted if wanted in ids else ids[0]
    if wanted and wanted not in ids and (params.get("tab") or "").strip().lower() == "guide":
        gr.Warning(f"Unknown guide page '{wanted}' · 没有这个页面，已打开首页")
    return gr.Radio(value=lang), _page_selector(page_id, lang), show_page(page_id, lang)


def change_language(lang: str, page_id: str):
    """Language toggle: relabel the page switcher, re-render the page, remember the choice in the browser."""
    lang = _valid_lang(lang) or pages.DEFAULT_LANG
    if page_id not in pages.page_ids(lang):
        page_id = pages.page_ids(lang)[0]
    return _page_selector(page_id, lang), show_page(page_id, lang), lang


def language_state() -> gr.BrowserState:
    """The remembered language. app.py creates it OUTSIDE gr.Tabs and passes it to build(): a BrowserState
    inside a tab is mounted only when the tab is shown, so the stored choice was overwritten with the default
    on the next visit."""
    return gr.BrowserState(pages.DEFAULT_LANG, storage_key=LANG_STORAGE_KEY)


def build(demo: gr.Blocks, stored_lang: gr.BrowserState | None = None) -> None:
    stored_lang = stored_lang if stored_lang is not None else language_state()
    first = pages.page_ids(pages.DEFAULT_LANG)[0]
    with gr.Row():
        page_radio = gr.Radio(choices=[(p.nav, p.id) for p in pages.list_pages(pages.DEFAULT_LANG)], value=first,
                              label="页面 · Page", scale=4)
        lang_radio = gr.Radio(LANG_CHOICES, value=pages.DEFAULT_LANG, label="语言 · Language", scale=1,
                              min_width=180)
    text = gr.Markdown(show_page(first, pages.DEFAULT_LANG), sanitize_html=_SANITIZE_HTML,
                       latex_delimiters=_LATEX, elem_id="guide-page")

    lang_radio.input(change_language, [lang_radio, page_radio], [page_radio, text, stored_lang],
                     api_visibility="private")
    page_radio.input(show_page, [page_radio, lang_radio], text, api_visibility="private")
    demo.load(open_from_url, [stored_lang], [lang_radio, page_radio, text], api_visibility="private",
              show_progress="hidden").then(
        None, None, None, js=_SCROLL_TO_HASH_JS, api_visibility="private")
