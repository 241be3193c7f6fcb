"""The Guide tab: builds inside a Blocks, deep links open the right page, the language choice is remembered."""
from __future__ import annotations

from types import SimpleNamespace

import gradio as gr
import pytest

from content import pages
from demos import guide


def _request(**query):
    # Handlers only read request.query_params (a starlette QueryParams in the app; a mapping works the same).
    return SimpleNamespace(query_params=query)


def test_guide_tab_builds_inside_blocks_with_switcher_language_toggle_and_browser_state():
    with gr.Blocks() as demo:
        guide.build(demo)
    components = list(demo.blocks.values())
    assert any(isinstance(c, gr.BrowserState) for c in components)
    radios = [c for c in components if isinstance(c, gr.Radio)]
    values = {tuple(value for _, value in r.choices) for r in radios}
    assert tuple(pages.page_ids("zh")) in values
    assert ("zh", "en") in values
    markdown = [c for c in components if isinstance(c, gr.Markdown)]
    assert any(pages.get_page(pages.page_ids("zh")[0], "zh").title in (m.value or "") for m in markdown)


def test_deep_link_opens_the_named_page_in_the_named_language():
    lang, page, text = guide.open_from_url("zh", _request(tab="guide", doc="costs", lang="en"))
    assert lang.value == "en"
    assert page.value == "costs"
    assert text == pages.render(pages.get_page("costs", "en"))
    assert ("Costs", "costs") in [tuple(choice) for choice in page.choices]


def test_remembered_language_is_used_when_the_link_names_none():
    lang, page, text = guide.open_from_url("en", _request(tab="guide", doc="primer"))
    assert (lang.value, page.value) == ("en", "primer")
    assert pages.get_page("primer", "en").title in text


def test_first_visit_defaults_to_chinese_and_the_first_page():
    lang, page, text = guide.open_from_url(None, None)
    assert (lang.value, page.value) == ("zh", pages.page_ids("zh")[0])


def test_unknown_page_or_language_in_the_url_falls_back_instead_of_failing():
    lang, page, _ = guide.open_from_url("fr", _request(tab="guide", doc="no-such-page", lang="xx"))
    assert (lang.value, page.value) == ("zh", pages.page_ids("zh")[0])


def test_switching_language_keeps_the_page_and_returns_the_choice_to_remember():
    page, text, remembered = guide.change_language("en", "growth")
    assert page.value == "growth" and remembered == "en"
    assert text == pages.render(pages.get_page("growth", "en"))


def test_showing_an_unknown_page_is_a_clear_ui_error():
    with pytest.raises(gr.Error):
        guide.show_page("no-such-page", "zh")
