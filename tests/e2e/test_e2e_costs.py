"""The cost calculator's sub-tab links and URL sync in a real browser (needs the exported models and Chromium,
like the rest of tests/e2e; deselect with -m 'not e2e')."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e


def test_breakeven_link_opens_its_sub_tab_filled_and_computed(visit):
    page = visit.open("?tab=costs&calc=breakeven&params=8e9&gpu=H100-80GB&gpus=1&util=0.5&api_in=0.15"
                      "&api_out=0.6&price=2&in_tokens=2e9&out_tokens=5e8")
    expect(page.get_by_role("tab", name="API vs self-host 自建对比", selected=True)).to_be_visible()
    expect(visit.textbox("Input tokens/month")).to_have_value("2e9")
    expect(page.get_by_text(re.compile(r"Break-even: .*tokens/month"))).to_be_visible()
    page.get_by_role("button", name="Compare", exact=True).click()
    expect(page.get_by_text(re.compile(r"at 50% utilisation vs the API"))).to_be_visible()


def test_editing_a_sub_tab_rewrites_the_url_for_that_calculator(visit):
    page = visit.open("?tab=costs&params=7e9&mfu=0.4")
    visit.tab("Cost calculator 成本计算")
    page.get_by_role("tab", name="Fleet 集群", exact=True).click()
    qps = visit.textbox("Requests/s (QPS)")
    qps.fill("25")
    qps.press("Enter")
    expect(page).to_have_url(re.compile(r"calc=fleet.*qps=25|qps=25.*calc=fleet"))
    assert "mfu=" not in page.url  # the train keys left with the train form
    page.get_by_role("button", name="Size the fleet", exact=True).click()
    expect(page.get_by_role("heading", name=re.compile(r"Llama-3-70B on H100-80GB: \d+ GPUs .* for 25 QPS"))
           ).to_be_visible()


def test_a_bad_link_value_warns_and_keeps_the_page(visit):
    page = visit.open("?tab=costs&calc=fleet&qps=lots&tp=3x")
    expect(page.get_by_role("tab", name="Fleet 集群", selected=True)).to_be_visible()
    expect(page.get_by_text(re.compile(r"Link: qps"))).to_be_visible()
    expect(visit.textbox("Requests/s (QPS)")).to_have_value("10")
