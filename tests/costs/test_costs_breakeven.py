import csv

import pytest

from costs import api_prices, breakeven


def test_api_price_table_is_dated_sourced_and_converted():
    rows = api_prices.load_api_prices()
    assert {"US", "CN"} <= {r.country for r in rows}
    with api_prices.DATA_FILE.open(newline="", encoding="utf-8") as handle:
        raw = list(csv.DictReader(handle))
    for row, price in zip(raw, rows):
        assert price.source_url.startswith("https://") and price.as_of.startswith("20")
        assert 0 < price.input_usd_per_1m <= price.output_usd_per_1m
        rate = float(row["fx_usd_per_unit"])
        assert float(row["original_input_per_1m"]) * rate == pytest.approx(price.input_usd_per_1m, rel=0.01)
        assert float(row["original_output_per_1m"]) * rate == pytest.approx(price.output_usd_per_1m, rel=0.01)
        if row["original_currency"] != "USD":
            assert row["fx_as_of"] and "USD" in row["note"]
        if price.cached_input_usd_per_1m is not None:
            assert price.cached_input_usd_per_1m < price.input_usd_per_1m


def test_break_even_by_hand():
    r = breakeven.estimate_break_even("H100-80GB", 1, 0.15, 0.6, 2e9, 5e8, 0.5, params=8e9, price=2.0)
    assert r.api_monthly_usd == pytest.approx(2000 * 0.15 + 500 * 0.6)
    assert r.set_monthly_usd == pytest.approx(2.0 * 730)
    assert r.break_even_monthly_tokens == pytest.approx(r.set_monthly_usd / (r.api_monthly_usd / 2.5e9))
    assert r.cheaper == "api"  # 2.5B tokens a month is below the break-even volume
    big = breakeven.estimate_break_even("H100-80GB", 1, 0.15, 0.6, 2e10, 5e9, 0.5, params=8e9, price=2.0)
    assert big.cheaper == "self-host" and big.break_even_monthly_tokens == pytest.approx(r.break_even_monthly_tokens)


def test_utilisation_moves_break_even_only_through_capacity():
    low = breakeven.estimate_break_even("H100-80GB", 1, 0.15, 0.6, 2e9, 5e8, 0.1, params=8e9, price=2.0)
    high = breakeven.estimate_break_even("H100-80GB", 1, 0.15, 0.6, 2e9, 5e8, 0.9, params=8e9, price=2.0)
    assert high.set_capacity_monthly_tokens == pytest.approx(low.set_capacity_monthly_tokens * 9)
    assert high.selfhost_usd_per_1m_tokens < low.selfhost_usd_per_1m_tokens


def test_self_hosting_never_wins_when_a_full_set_costs_more_per_token():
    r = breakeven.estimate_break_even("H100-80GB", 8, 0.01, 0.01, 1e9, 1e8, 0.05, model="llama3-70b", price=10)
    assert r.break_even_monthly_tokens is None and "never" in r.message and r.cheaper == "api"


def test_cost_curves_for_the_plot():
    r = breakeven.estimate_break_even("H100-80GB", 1, 0.15, 0.6, 2e9, 5e8, 0.5, params=8e9, price=2.0)
    curves = breakeven.cost_curves(r)
    assert len(curves["monthly_tokens"]) == len(curves["api_usd"]) == len(curves["selfhost_usd"])
    assert curves["selfhost_usd"][0] == r.set_monthly_usd and curves["api_usd"][-1] > curves["api_usd"][0]


@pytest.mark.parametrize("kwargs,needle", [(dict(util=0), "util"), (dict(util=1.5), "util"),
                                           (dict(api_in=-1), "api_in"), (dict(in_tokens=0, out_tokens=0), "greater"),
                                           (dict(gpu="MI300X"), "price")])
def test_bad_break_even_input(kwargs, needle):
    base = dict(gpu="H100-80GB", gpus=1, api_in=0.15, api_out=0.6, in_tokens=2e9, out_tokens=5e8, util=0.5,
                params=8e9)
    base.update(kwargs)
    with pytest.raises(ValueError, match=needle):
        breakeven.estimate_break_even(**base)
