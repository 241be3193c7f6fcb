"""HTML/JS typed into the site must stay text: no dialog fires, nothing is rendered as markup, and the text
shows literally where the site echoes it back."""
from __future__ import annotations

import csv
import io
import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"


def test_injection_in_classify_is_shown_as_text(visit):
    page = visit.open("?tab=classify")
    page.get_by_label("Text (English)").fill(f"{IMG} {SCRIPT} I love it")
    page.get_by_role("button", name="Classify", exact=True).click()
    highlights = page.get_by_test_id("highlighted-text")
    expect(highlights).to_contain_text("<img")
    expect(highlights).to_contain_text("<script>alert(1)</script>")
    visit.assert_no_script_ran()


def test_injection_in_translate_is_shown_as_text(visit):
    page = visit.open("?tab=translate")
    page.get_by_label("Text 原文").fill(IMG)
    page.get_by_role("button", name="Translate 翻译", exact=True).click()
    expect(page.get_by_text(re.compile(r"\b(\d+)/\1 segments"))).to_be_visible()
    expect(visit.textbox("Translation 译文")).not_to_have_value("")
    expect(page.get_by_label("Text 原文")).to_have_value(IMG)
    visit.assert_no_script_ran()


def test_injection_in_attention_is_shown_as_text(visit):
    page = visit.open("?tab=attention")
    page.get_by_label("Text 文本").fill(f"hello {IMG} {SCRIPT}")
    page.get_by_role("button", name="Show attention 查看注意力").click()
    expect(page.get_by_text(re.compile(r"minilm-l6-v2 · encoder"))).to_be_visible()
    expect(page.locator(".js-plotly-plot .ytick").filter(has_text="script").first).to_be_attached()
    visit.assert_no_script_ran()
    assert page.locator("script").filter(has_text="alert(1)").count() == 0


def test_injection_in_generate_chat_is_shown_as_text(visit):
    page = visit.open()
    page.get_by_label("Prompt 提示词").fill(f"{SCRIPT} and {IMG}")
    page.get_by_label("number input for Max new tokens").fill("2")
    page.get_by_label("number input for Max new tokens").press("Enter")
    page.get_by_role("button", name="Generate 生成", exact=True).click()
    message = page.get_by_test_id("user").last
    expect(message).to_be_visible()
    assert not visit.dialogs
    expect(message).to_contain_text(f"{SCRIPT} and {IMG}", timeout=5_000)
    visit.assert_no_script_ran()


def test_injection_in_the_calculator_error_is_shown_as_text(visit):
    page = visit.open("?tab=costs")
    page.get_by_label("Parameters N").fill(IMG)
    page.get_by_role("button", name="Estimate", exact=True).click()
    toast = visit.error_toast("cannot read")
    assert not visit.dialogs
    expect(toast).to_contain_text(IMG, timeout=5_000)
    visit.assert_no_script_ran()


def test_formulas_typed_into_attention_cannot_run_in_its_csv(visit):
    """The attention tab's CSV holds the tokens of what was typed: each one that starts a formula is quoted."""
    page = visit.open("?tab=attention")
    page.get_by_label("Text 文本").fill("=1+2 @SUM(A1) -3 +cmd")
    page.get_by_role("button", name="Show attention 查看注意力").click()
    expect(page.get_by_text(re.compile(r"minilm-l6-v2 · encoder"))).to_be_visible()
    link = page.get_by_role("link", name=re.compile(r"KB"))
    expect(link).to_be_visible()
    body = page.request.get(link.get_attribute("href")).body().decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(body, newline="")))
    labels = rows[0][1:]
    for prefix in ("=", "@", "-", "+"):  # the tokens are there, neutralised (repeats carry their position)
        assert any(label.startswith("'" + prefix) for label in labels), (prefix, labels)
    for row in rows:
        assert not any(cell[:1] in ("=", "+", "@", "\t", "\r") for cell in row), row
        assert not any(cell.startswith("-") and not _is_number(cell) for cell in row), row
    visit.assert_no_script_ran()


def _is_number(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False
