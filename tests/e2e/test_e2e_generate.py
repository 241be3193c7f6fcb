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


def _settings(page, max_new: int, temperature: float | None = None, seed: str | None = None) -> None:
    page.get_by_label("number input for Max new tokens").fill(str(max_new))
    page.get_by_label("number input for Max new tokens").press("Enter")
    if temperature is not None:
        page.get_by_label("number input for Temperature (0 = greedy)").fill(str(temperature))
        page.get_by_label("number input for Temperature (0 = greedy)").press("Enter")
    if seed is not None:
        page.get_by_label("Seed (empty = random; the seed used is shown)").fill(seed)


def _run_and_wait(page, tokens: int) -> str:
    page.get_by_role("button", name="Generate 生成", exact=True).click()
    expect(page.locator("#generate-badge")).to_contain_text(re.compile(rf"\b{tokens} tokens|eos"))
    return page.get_by_test_id("bot").last.inner_text()


def test_a_share_link_opened_in_the_browser_fills_the_form_and_reproduces_the_text(visit, site_url):
    page = visit.open()
    page.get_by_label("Prompt 提示词").fill("Write one sentence about a startup that sells bread.")
    _settings(page, 16, temperature=0.9, seed="4242")
    first = _run_and_wait(page, 16)
    link = visit.textbox("Share link (reproduces this run)").input_value()
    assert "seed=4242" in link and "temperature=0.9" in link and "max_new=16" in link

    visit.open(link)  # a friend opens the link
    expect(page.get_by_label("Prompt 提示词")).to_have_value("Write one sentence about a startup that sells bread.")
    expect(page.get_by_label("Seed (empty = random; the seed used is shown)")).to_have_value("4242")
    expect(page.get_by_label("number input for Max new tokens")).to_have_value("16")
    expect(page.get_by_label("number input for Temperature (0 = greedy)")).to_have_value("0.9")
    assert _run_and_wait(page, 16) == first  # same link, same text
    visit.screenshot("reproduced")


def test_multi_turn_chat_keeps_the_conversation(visit, site_url):
    page = visit.open()
    _settings(page, 24, temperature=0)
    page.get_by_label("Prompt 提示词").fill("What is my name?")
    alone = _run_and_wait(page, 24)
    page.get_by_role("button", name="Clear 清空").click()
    expect(page.get_by_test_id("bot")).to_have_count(0)

    page.get_by_label("Prompt 提示词").fill("Hello! My name is Alice and I run a bakery.")
    _run_and_wait(page, 24)
    page.get_by_label("Prompt 提示词").fill("What is my name?")
    with_history = _run_and_wait(page, 24)
    users = page.get_by_test_id("user")
    expect(users).to_have_count(2)
    expect(page.get_by_test_id("bot")).to_have_count(2)
    expect(users.first).to_contain_text("My name is Alice")
    expect(users.last).to_contain_text("What is my name?")
    # greedy decoding: the same question gets another answer only because the first turn was sent along
    assert with_history != alone, with_history
    visit.screenshot("two-turns")


def test_the_top5_alternatives_table_shows_each_generated_token(visit):
    page = visit.open()
    _settings(page, 6, temperature=0)
    # no repetition penalty: then greedy picks exactly the model's first choice shown in the table
    page.get_by_label("number input for Repetition penalty (1 = off)").fill("1")
    page.get_by_label("number input for Repetition penalty (1 = off)").press("Enter")
    page.get_by_test_id("completion-radio-label").click()
    page.get_by_label("Prompt 提示词").fill("The capital of France is")
    page.get_by_role("button", name="Generate 生成", exact=True).click()
    expect(page.locator("#generate-badge")).to_contain_text("6 tokens")
    page.get_by_role("button", name=re.compile("Show alternatives")).click()
    table = page.get_by_role("grid").filter(has_text="5th").first
    expect(table).to_be_visible()
    cells = [c.strip() for c in table.get_by_role("button").all_inner_texts()]  # the whole grid, headers, then cells
    cells = cells[cells.index("5th") + 1:]  # body cells: #, token, 1st..5th per row
    rows = [cells[i:i + 7] for i in range(0, len(cells), 7)]
    assert [r[0] for r in rows] == ["1", "2", "3", "4", "5", "6"], cells
    for row in rows:
        probs = [float(re.search(r"([\d.]+)%$", cell).group(1)) for cell in row[2:]]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 100.05
        assert row[2].startswith(row[1] + " "), row  # greedy: the chosen token is the model's first choice
    visit.screenshot("alternatives")


def test_a_full_queue_answers_busy_in_the_browser(visit, site_url):
    """More waiting requests than LAB_QUEUE_SIZE (16 here): the next visitor is told at once, not left waiting."""
    from tests.api.site_checks import flood_queue

    page = visit.open()
    page.get_by_label("Prompt 提示词").fill("Hello")
    with flood_queue(site_url, "generate", ["Tell me a long story.", "completion", 64, 0.8, 50, 0.95, 1.1, 1,
                                            "", ""]):
        page.get_by_role("button", name="Generate 生成", exact=True).click()
        visit.error_toast("busy")
        visit.screenshot("busy")
    assert wait_for_active_generations(site_url, lambda n: n == 0, 60) == 0, "the flood was not cancelled"
