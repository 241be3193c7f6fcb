"""Generate tab in a real browser: a streamed answer, Stop that really stops, completion mode on a phone."""
from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from tests.api.site_checks import get_health, wait_for_active_generations

pytestmark = pytest.mark.e2e


def test_generate_streams_an_answer_and_stop_stops_the_server(visit, site_url):
    page = visit.open()
    visit.tab("Generate 生成")
    page.get_by_label("Prompt 提示词").fill("Tell me a long story about a robot who opens a bakery.")
    page.get_by_label("number input for Max new tokens").fill("1024")
    page.get_by_label("number input for Max new tokens").press("Enter")
    page.get_by_role("button", name="Generate 生成", exact=True).click()

    answer = page.get_by_test_id("bot").last
    expect(answer).to_contain_text(" ")  # the first words have streamed in
    assert get_health(site_url)[1]["active_generations"] >= 1
    visit.screenshot("streaming")
    page.get_by_role("button", name="Stop 停止").click()

    assert wait_for_active_generations(site_url, lambda n: n == 0, 5) == 0, "the server kept decoding after Stop"
    stopped_text = answer.inner_text()
    time.sleep(1.5)
    assert answer.inner_text() == stopped_text, "text kept arriving after Stop"
    expect(page.get_by_test_id("user").last).to_contain_text("robot who opens a bakery")
    expect(page.locator("#generate-badge")).to_contain_text("tokens/s")  # speed and provider shown
    expect(page.locator("#generate-badge")).to_contain_text("CPU")
    share = visit.textbox("Share link (reproduces this run)")
    expect(share).to_have_value(re.compile(r"^\?tab=generate&prompt=Tell\+me"))
    visit.screenshot("stopped")


def test_completion_mode_on_a_phone(mobile_visit, site_url):
    page = mobile_visit.open()
    page.get_by_test_id("completion-radio-label").click()
    output = mobile_visit.textbox("Output 输出")
    expect(output).to_be_visible()
    expect(page.get_by_label("Conversation 对话")).to_be_hidden()
    page.get_by_label("Prompt 提示词").fill("The three biggest costs of training a language model are")
    page.get_by_label("number input for Max new tokens").fill("12")
    page.get_by_label("number input for Max new tokens").press("Enter")
    page.get_by_role("button", name="Generate 生成", exact=True).click()
    expect(output).not_to_have_value("")
    expect(page.locator("#generate-badge")).to_contain_text("12 tokens")
    assert wait_for_active_generations(site_url, lambda n: n == 0, 10) == 0
    mobile_visit.screenshot("completion")
    # the page fits the phone: nothing forces sideways scrolling
    assert page.evaluate("document.documentElement.scrollWidth") <= 390 + 1


def test_an_empty_seed_draws_a_new_random_seed_for_each_run(visit):
    page = visit.open()
    expect(page.get_by_label("Seed (empty = random; the seed used is shown)")).to_have_value("", timeout=5_000)
    seeds = []
    for _ in range(2):
        page.get_by_label("Prompt 提示词").fill("Name a colour.")
        page.get_by_label("number input for Max new tokens").fill("2")
        page.get_by_label("number input for Max new tokens").press("Enter")
        page.get_by_role("button", name="Generate 生成", exact=True).click()
        expect(page.locator("#generate-badge")).to_contain_text("2 tokens")
        seeds.append(re.search(r"seed (\d+)", page.locator("#generate-badge").inner_text()).group(1))
        page.get_by_role("button", name="Clear 清空").click()
        expect(page.locator("#generate-badge")).to_have_text("")
    assert seeds[0] != seeds[1]
