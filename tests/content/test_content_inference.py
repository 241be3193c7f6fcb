"""The inference-economics page: its worked numbers follow from the inputs it states and links."""
from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal

import pytest

from content import pages
from costs import api_prices
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
    listed = api_prices.get_api_price("gpt-5-mini")  # the example says "GPT-5 mini at the list prices above"
    assert (listed.input_usd_per_1m, listed.output_usd_per_1m) == (float(link["api_in"]), float(link["api_out"]))
    assert "GPT-5 mini" in page.body and any(row[1] == listed.model for row in _price_rows(page))


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


def _price_rows(page: pages.Page) -> list[list[str]]:
    section = page.body.split("{#api-prices}", 1)[1].split("\n## ", 1)[0]
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in section.splitlines()
            if line.startswith("|") and not line.startswith("|---")]
    return rows[1:]  # without the header


def _usd(cell: str) -> float:
    return float(re.match(r"[0-9.]+", cell).group())


@pytest.mark.parametrize("lang", pages.LANGS)
def test_price_table_is_the_calculators_csv_row_for_row(lang):
    rows, listed = _price_rows(pages.get_page("inference", lang)), api_prices.load_api_prices()
    assert [row[1] for row in rows] == [p.model for p in listed]
    for row, p in zip(rows, listed):
        assert (_usd(row[2]), _usd(row[4])) == (p.input_usd_per_1m, p.output_usd_per_1m), p.model
        assert row[3] == "—" if p.cached_input_usd_per_1m is None else _usd(row[3]) == p.cached_input_usd_per_1m
        assert row[6] == p.as_of and (p.source_url in row[7] or row[7] in ("same", "同上"))
        if p.original_currency != "USD":  # the provider's own figure stands beside the conversion
            assert f"{p.original_currency} {p.original_input_per_1m:g}" in row[2]


def test_price_table_is_dated_and_sourced_in_both_languages():
    for lang, marker in (("en", "late 2025"), ("zh", "2025 年末")):
        page = pages.get_page("inference", lang)
        assert marker in page.body.split("{#api-prices}", 1)[1].split("\n## ", 1)[0]
        countries = {p.country for p in api_prices.load_api_prices()}
        assert {"US", "CN"} <= countries and len(_price_rows(page)) >= 8


def test_no_page_keeps_a_hand_written_price_table():
    for path in sorted(pages.CONTENT_DIR.glob("*/*.md")):
        for line in path.read_text(encoding="utf-8").splitlines():
            header = line.startswith("|") and (("Input" in line and "Output" in line) or ("输入" in line and "输出" in line))
            assert not header, f"{path}: a price table is written by hand; use {{{{table:api-prices}}}}"


def test_unknown_generated_table_is_refused(tmp_path):
    text = "---\nid: x\ntitle: t\nnav: n\norder: 1\nupdated: 2026-12\nsummary: s\n---\n{{table:nope}}\n"
    with pytest.raises(ValueError, match="unknown table 'nope'"):
        pages.parse_page(text, tmp_path / "x.md", "en")


@pytest.mark.parametrize("lang", pages.LANGS)
def test_price_ratios_and_conversion_rate_quoted_under_the_table_follow_from_it(lang):
    listed = api_prices.load_api_prices()
    ratio = {p.model: p.output_usd_per_1m / p.input_usd_per_1m for p in listed}
    us = [ratio[p.model] for p in listed if p.country == "US"]
    deepseek = [ratio[p.model] for p in listed if p.provider == "DeepSeek"]
    other_cn = [ratio[p.model] for p in listed if p.country == "CN" and p.provider != "DeepSeek"]
    assert 4 <= min(us) and max(us) < 8.5  # "4–8×"
    assert all(round(r, 1) == 1.5 for r in deepseek)  # "1.5×"
    assert 1.95 <= min(other_cn) and max(other_cn) < 4.25  # "2–4×"
    body = pages.get_page("inference", lang).body
    assert ("4–8" in body) and ("1.5" in body) and ("2–4" in body)
    rates = {round(1 / p.fx_usd_per_unit, 1) for p in listed if p.original_currency == "CNY"}
    assert rates == {7.2} and "7.2" in body


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
