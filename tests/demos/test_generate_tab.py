"""Generate tab handlers: settings validation, share links, streaming through the UI handler."""
from __future__ import annotations

import gradio as gr
import pytest

from demos import generate as tab
from models import generation


class FakeRequest:
    def __init__(self, **params):
        self.query_params = params


@pytest.mark.parametrize("field,value", [("temperature", -1), ("top_p", 0), ("max_new_tokens", 0),
                                         ("top_k", -5), ("repetition_penalty", 9), ("seed", -1),
                                         ("temperature", "nan"), ("max_new_tokens", "many")])
def test_invalid_settings_become_a_clear_ui_error(field, value):
    settings = dict(max_new_tokens=16, temperature=0.7, top_k=50, top_p=0.9, repetition_penalty=1.1, seed=1, stop="")
    settings[field] = value
    with pytest.raises(ValueError, match="invalid setting"):
        tab.make_settings(**settings)


def test_stop_strings_parse_commas_and_newlines():
    assert tab.parse_stop_strings("END, \\n\\n ,") == ("END", "\n\n")


def test_share_link_round_trips_into_the_form():
    settings = tab.make_settings(100, 0.3, 20, 0.8, 1.2, 1234, "END")
    query = tab.share_query("Tell me a joke & more", "completion", "Be funny", settings, "END")
    from urllib.parse import parse_qsl

    params = dict(parse_qsl(query.lstrip("?")))
    values = tab.apply_query(FakeRequest(**params))
    assert values == ["Tell me a joke & more", "completion", "Be funny", 100, 0.3, 20, 0.8, 1.2, "1234", "END"]


def test_malformed_share_links_keep_defaults():
    values = tab.apply_query(FakeRequest(tab="generate", prompt="hi", temperature="hot", mode="evil"))
    assert values[1] == "chat" and values[4] == tab.DEFAULTS.temperature


def test_ui_handler_streams_into_chat_and_reports_speed(tiny_llama, make_engine, monkeypatch):
    lm = make_engine("tiny-llama", eos=False)
    monkeypatch.setattr(generation, "get_generator", lambda model_id=None: lm)
    outputs = list(tab.run_generation("The cat", "chat", [], "", 5, 0, 50, 1.0, 1.0, 3, ""))
    chat, text, badge, table, share = outputs[-1]
    assert chat[-1]["role"] == "assistant" and chat[-1]["content"] == text
    assert "CPU" in badge and "tokens" in badge and "seed 3" in badge
    assert len(table) == 5 and share.startswith("?tab=generate")


def test_ui_handler_rejects_an_empty_prompt_with_gr_error():
    with pytest.raises(gr.Error, match="empty"):
        list(tab.run_generation("  ", "chat", [], "", 5, 0, 50, 1.0, 1.0, 3, ""))

