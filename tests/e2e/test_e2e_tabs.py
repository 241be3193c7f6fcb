"""Translate (with swap), Attention (several views), the cost calculator (a preset) and the Guide (language
toggle) in a real browser, asserting on what a person sees."""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

CJK = re.compile(r"[\u4e00-\u9fff]")
PENDING = "[data-testid=status-tracker]:not(.hide)"  # a component waiting for an event's answer
DONE = re.compile(r"\b(\d+)/\1 segments")  # the translate badge once every segment is done


def choose(page, label: str, option: str) -> None:
    """Pick an option of a gr.Dropdown the way a person does: open it, click the entry."""
    field = page.get_by_label(label, exact=True)
    field.click()
    # this dropdown's own list (its input names it): another dropdown's list may be open with the same entry
    page.locator(f"#{field.get_attribute('aria-controls')}").get_by_role("option", name=option, exact=True).click()
    expect(page.get_by_label(label, exact=True)).to_have_value(option)


def test_translate_then_swap_languages(visit):
    page = visit.open()
    visit.tab("Translate 翻译")
    choose(page, "From 源语言", "English")
    expect(page.get_by_label("To 目标语言", exact=True)).to_have_value("中文 (简体)")
    page.get_by_label("Text 原文").fill("Good morning. The meeting has been moved to Thursday.")
    page.get_by_role("button", name="Translate 翻译", exact=True).click()
    output = visit.textbox("Translation 译文")
    expect(page.get_by_text(DONE)).to_be_visible()  # e.g. "2/2 segments": the translation is complete
    expect(output).to_have_value(CJK)
    chinese = output.input_value()
    visit.screenshot("translated")

    page.get_by_role("button", name="⇄ Swap 交换").click()
    expect(page.get_by_label("From 源语言", exact=True)).to_have_value("中文 (简体)")
    expect(page.get_by_label("To 目标语言", exact=True)).to_have_value("English")
    expect(page.get_by_label("Text 原文")).to_have_value(chinese)  # the translation moved into the input
    expect(output).to_have_value("")
    page.get_by_role("button", name="Translate 翻译", exact=True).click()
    expect(page.get_by_text(DONE)).to_be_visible()
    expect(output).to_have_value(re.compile(r"thursday|meeting|morning", re.IGNORECASE))
    assert not CJK.search(output.input_value())
    visit.screenshot("swapped")


def test_attention_views(visit):
    page = visit.open("?tab=attention")
    expect(page.get_by_role("tab", name="Attention 注意力", selected=True)).to_be_visible()
    page.get_by_role("button", name="Show attention 查看注意力").click()
    note = page.get_by_text(re.compile(r"minilm-l6-v2 · encoder"))
    expect(note).to_contain_text("6 layers × 12 heads")
    expect(page.locator(".js-plotly-plot .heatmaplayer").first).to_be_visible()
    expect(page.get_by_text("10: tired")).to_be_visible()  # token view preselects the last real word
    expect(page.get_by_role("link", name=re.compile(r"KB"))).to_be_visible()  # the matrix as CSV
    visit.screenshot("heatmap")

    page.get_by_text("Model view 全部层×头", exact=True).click()
    expect(page.get_by_text("Model view of all 6×12 heads")).to_be_visible()
    visit.screenshot("model-view")
    page.get_by_text("Token view 词元视图", exact=True).click()
    expect(page.get_by_text(re.compile(r"Selected: .*Bars sum the selected rows"))).to_be_visible()
    page.get_by_text("Head statistics 注意力头统计", exact=True).click()
    expect(page.get_by_text("72 heads; the table under")).to_be_visible()
    visit.screenshot("head-stats")

    choose(page, "Model 模型", "SmolLM2-135M (decoder, causal: 30 layers × 9 heads)")
    page.get_by_text("Heatmap 热力图", exact=True).click()
    page.get_by_role("button", name="Show attention 查看注意力").click()
    expect(page.get_by_text(re.compile(r"smollm2-135m-instruct · decoder, causal"))).to_contain_text(
        "30 layers × 9 heads")
    visit.screenshot("decoder")


def test_cost_calculator_preset(visit):
    page = visit.open("?tab=costs")  # a deep link, as the guide pages link here
    expect(page.get_by_role("tab", name="Cost calculator 成本计算", selected=True)).to_be_visible()
    choose(page, "Model preset", "llama3-8b")
    expect(page.get_by_label("Parameters N")).to_have_value("8.03e9")
    expect(page.get_by_label("Training tokens D")).to_have_value("1.5e13")
    page.get_by_role("button", name="Estimate", exact=True).click()
    expect(page.get_by_role("heading", name="8.03B params · 15T tokens on H100-80GB")).to_be_visible()
    expect(page.get_by_text(re.compile(r"days on 1,024 GPUs"))).to_be_visible()
    expect(page.get_by_role("cell", name="compute", exact=True)).to_be_visible()
    expect(page.locator(".js-plotly-plot").first).to_be_visible()
    assert "params=8.03e9" in page.url and "preset=llama3-8b" in page.url  # the state is shareable
    visit.screenshot("llama3-8b")


def test_cost_calculator_inputs_are_usable_after_switching_tabs(visit):
    """Regression: load-event spinners once stuck on tabs opened later and swallowed clicks."""
    page = visit.open()
    expect(page.locator(PENDING)).to_have_count(0, timeout=20_000)  # every load event has finished
    visit.tab("Cost calculator 成本计算")
    page.get_by_label("Model preset", exact=True).click(timeout=10_000)
    expect(page.get_by_role("option", name="llama3-8b", exact=True)).to_be_visible()


def test_guide_language_toggle_is_usable_after_switching_tabs_on_a_phone(mobile_visit):
    """Regression: as above, for the Guide's language toggle, reached through the ⋯ menu."""
    page = mobile_visit.open()
    expect(page.locator(PENDING)).to_have_count(0, timeout=20_000)
    mobile_visit.tab("Guide 创业指南")  # behind the ⋯ menu on a phone
    page.get_by_text("English", exact=True).click(timeout=10_000)
    expect(page.get_by_label("Opportunities")).to_be_checked()


def test_guide_language_toggle_and_deep_link_on_a_phone(mobile_visit):
    page = mobile_visit.open("?tab=guide")
    guide = page.locator("#guide-page")
    expect(guide).to_contain_text("机遇：创业公司在哪里能赢")  # Chinese by default
    expect(page.get_by_label("机遇")).to_be_checked()
    mobile_visit.screenshot("zh")

    page.get_by_text("English", exact=True).click()
    expect(guide).to_contain_text("Opportunities: where startups win")
    expect(guide).not_to_contain_text("机遇：创业公司在哪里能赢")
    expect(page.get_by_label("Opportunities")).to_be_checked()  # the page switcher is relabelled
    page.get_by_text("FAQ", exact=True).click()
    expect(guide).to_contain_text("Frequently asked questions")
    mobile_visit.screenshot("en-faq")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390 + 1  # fits the phone

    page.goto(mobile_visit.base_url + "?tab=guide&doc=costs&lang=zh")  # a deep link names page and language
    expect(guide).to_contain_text("成本详解：计算器是怎么算的")
    expect(page.get_by_label("成本")).to_be_checked()


def test_guide_remembers_the_language_on_the_next_visit(visit):
    page = visit.open("?tab=guide")
    page.get_by_text("English", exact=True).click()
    expect(page.locator("#guide-page")).to_contain_text("Opportunities: where startups win")
    visit.open("?tab=guide")
    expect(page.locator("#guide-page")).to_contain_text("Opportunities: where startups win", timeout=10_000)


# script (or words) that only a real translation into that language produces
TARGETS = [
    ("日本語", re.compile(r"[\u3040-\u30ff]")),  # kana: Japanese, not Chinese
    ("한국어", re.compile(r"[\uac00-\ud7a3]")),  # Hangul
    ("Français", re.compile(r"\b(la|le|les|réunion|jeudi|bonjour|est|a été)\b", re.IGNORECASE)),
    ("Deutsch", re.compile(r"\b(die|das|der|ist|wurde|besprechung|donnerstag|guten)\b", re.IGNORECASE)),
    ("Español", re.compile(r"\b(la|el|ha|sido|reunión|jueves|buenos)\b", re.IGNORECASE)),
]


def test_translation_into_japanese_korean_french_german_and_spanish(visit):
    page = visit.open("?tab=translate")
    choose(page, "From 源语言", "English")
    page.get_by_label("Text 原文").fill("Good morning. The meeting has been moved to Thursday.")
    output = visit.textbox("Translation 译文")
    for language, expected in TARGETS:
        choose(page, "To 目标语言", language)
        page.get_by_role("button", name="Translate 翻译", exact=True).click()
        expect(page.get_by_text(DONE)).to_be_visible()
        expect(output).to_have_value(expected)
        # a 0.5B model may keep a name like "Thursday" in Latin letters; the sentence itself must be translated
        assert "Good morning" not in output.input_value(), (language, output.input_value())
        visit.screenshot(f"to-{language}")


def test_translate_stop_stops_the_server_and_the_text(visit, site_url):
    from tests.api.site_checks import get_health

    page = visit.open("?tab=translate")
    choose(page, "From 源语言", "English")
    long_text = " ".join(f"Sentence number {i} explains why a startup should measure its costs every week."
                         for i in range(30))
    page.get_by_label("Text 原文").fill(long_text)
    page.get_by_role("button", name="Translate 翻译", exact=True).click()
    output = visit.textbox("Translation 译文")
    expect(output).not_to_have_value("")  # the first words have streamed in
    assert get_health(site_url)[1]["active_translations"] >= 1
    page.get_by_role("button", name="Stop 停止").click()
    deadline = time.monotonic() + 5
    while get_health(site_url)[1]["active_translations"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert get_health(site_url)[1]["active_translations"] == 0, "the server kept translating after Stop"
    stopped = output.input_value()
    time.sleep(1.5)
    assert output.input_value() == stopped, "text kept arriving after Stop"
    expect(page.get_by_text(DONE)).to_have_count(0)  # it did not finish: Stop ended it
    visit.screenshot("stopped")


def test_a_calculator_link_opened_in_the_browser_fills_the_form(visit):
    page = visit.open("?tab=costs&params=13e9&tokens=3e12&gpu=A100-80GB&gpus=256&mfu=0.35&price=1.8")
    expect(page.get_by_role("tab", name="Cost calculator 成本计算", selected=True)).to_be_visible()
    expect(page.get_by_label("Parameters N")).not_to_have_value("6.74e9")  # the default gave way to the link
    assert float(page.get_by_label("Parameters N").input_value()) == 13e9  # shown as 1.3e10
    assert float(page.get_by_label("Training tokens D").input_value()) == 3e12
    expect(page.get_by_label("GPU", exact=True).first).to_have_value("A100-80GB")  # the training form's
    page.get_by_role("button", name="Estimate", exact=True).click()
    expect(page.get_by_role("heading", name=re.compile(r"13B params · 3T tokens on A100-80GB"))).to_be_visible()
    expect(page.get_by_text(re.compile(r"days on 256 GPUs"))).to_be_visible()
    visit.screenshot("from-link")


@pytest.mark.parametrize("image_format, magic", [("png", b"\x89PNG\r\n\x1a\n"), ("svg", b"<svg")])
def test_the_attention_camera_button_downloads_a_real_image(visit, image_format, magic):
    page = visit.open("?tab=attention")
    page.get_by_text(image_format, exact=True).click()  # "Camera button saves" png | svg
    page.get_by_role("button", name="Show attention 查看注意力").click()
    expect(page.locator(".js-plotly-plot .heatmaplayer").first).to_be_visible()
    plot = page.locator(".js-plotly-plot").first
    plot.hover()
    with page.expect_download(timeout=60_000) as info:
        plot.locator(".modebar-btn[data-title^='Download plot']").click()
    download = info.value
    assert download.suggested_filename.endswith("." + image_format), download.suggested_filename
    data = Path(download.path()).read_bytes()
    assert data.lstrip()[:len(magic)] == magic or (image_format == "svg" and b"<svg" in data[:500])
    assert len(data) > 10_000  # a rendered heatmap, not an empty image
