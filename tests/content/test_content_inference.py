"""The inference-economics page: its worked numbers follow from the inputs it states and links."""
from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal

import pytest

from content import pages
from costs.prices import prices_for

HOURS_PER_MONTH = 8760 / 12


def _breakeven_links(page: pages.Page) -> list[dict[str, str]]:
    links = [pages.parse_internal_link(link.url) for link in page.links if link.internal]
    return [link.params for link in links if link.tab == "costs" and link.params.get("calc") == "breakeven"]


@pytest.mark.parametrize("lang", pages.LANGS)
def test_break_even_example_matches_the_calculator_link_it_opens(lang):
    page = pages.get_page("inference", lang)
    links = _breakeven_links(page)
    assert links and all(link == links[0] for link in links), "one worked example, linked the same way each time"
    p = {key: float(value) for key, value in links[0].items() if key not in ("calc", "gpu")}
    api = p["in_tokens"] / 1e6 * p["api_in"] + p["out_tokens"] / 1e6 * p["api_out"]
    self_host = p["gpus"] * p["price"] * HOURS_PER_MONTH
    body = page.body
    assert f"{api:,.0f}" in body and f"{self_host:,.0f}" in body
    assert f"{self_host / api:.1f}" in body  # "cheaper by a factor of 1.5"
    average_tps = p["out_tokens"] / (HOURS_PER_MONTH * 3600)
    assert f"{average_tps:.0f}" in body


@pytest.mark.parametrize("lang", pages.LANGS)
def test_break_even_gpu_price_is_a_calculator_preset_with_its_date(lang):
    link = _breakeven_links(pages.get_page("inference", lang))[0]
    presets = [p for p in prices_for(link["gpu"]) if p.usd_per_gpu_hour == float(link["price"])]
    assert presets, "the page's GPU price is one of the calculator's dated presets"
    assert any(p.as_of in pages.get_page("inference", lang).body for p in presets)


@pytest.mark.parametrize("lang", pages.LANGS)
def test_break_even_api_prices_are_the_ones_in_the_price_table(lang):
    page = pages.get_page("inference", lang)
    link = _breakeven_links(page)[0]
    row = next(line for line in page.body.splitlines() if line.startswith("| OpenAI GPT-5 mini |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert (float(cells[1]), float(cells[3])) == (float(link["api_in"]), float(link["api_out"]))


@pytest.mark.parametrize("lang", pages.LANGS)
def test_gross_margin_arithmetic(lang):
    body = pages.get_page("inference", lang).body
    def usd(value: Decimal, places: str) -> str:  # money rounds half up, as the page does
        return str(value.quantize(Decimal(places), rounding=ROUND_HALF_UP))

    m = Decimal(10) ** 6
    per_request = 3000 * Decimal(3) / m + 500 * Decimal(15) / m  # Claude Sonnet 4.5 list prices
    cached = 500 * Decimal(3) / m + 2500 * Decimal("0.30") / m + 500 * Decimal(15) / m
    assert usd(per_request, "0.0001") in body and usd(per_request * 300, "0.01") in body
    assert usd(cached, "0.00001") in body and usd(cached * 300, "0.01") in body
    assert usd(per_request * 3000, "0.01") in body  # the heavy seat, ten times the requests
    assert f"{100 * (1 - 87_072 / 562_027):.1f}%" in body  # DeepSeek's disclosure as a gross margin
    assert re.search(r"545\s*%", body)


def test_price_table_is_dated_and_sourced_in_both_languages():
    for lang, marker in (("en", "late 2025"), ("zh", "2025 年末")):
        body = pages.get_page("inference", lang).body
        section = body.split("{#api-prices}", 1)[1].split("\n## ", 1)[0]
        assert marker in section
        rows = [line for line in section.splitlines() if line.startswith("| ") and "---" not in line][1:]
        assert len(rows) >= 8
        assert any("DeepSeek" in row for row in rows) and any("Kimi" in row for row in rows)


@pytest.mark.parametrize("lang", pages.LANGS)
def test_serving_cost_example_on_the_costs_page_uses_deepseeks_published_throughput(lang):
    body = pages.get_page("costs", lang).body
    usd_per_million = 2 * 8 / 3600 / 14_800 * 1e6
    assert "14,800" in body and f"{usd_per_million:.2f}" in body


@pytest.mark.parametrize("lang", pages.LANGS)
def test_faq_self_host_figure_is_the_break_even_example(lang):
    link = _breakeven_links(pages.get_page("inference", lang))[0]
    monthly = float(link["price"]) * float(link["gpus"]) * HOURS_PER_MONTH
    assert f"{monthly:,.0f}" in pages.get_page("faq", lang).body
