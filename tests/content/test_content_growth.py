"""The growth page's worked numbers: eval sample sizes, judge correction, unit economics."""
from __future__ import annotations

import math
import re
from statistics import NormalDist

import pytest

from content import pages
from costs import api_prices


def _section(body: str, anchor: str) -> str:
    return body.split("{#" + anchor + "}", 1)[1].split("\n### ", 1)[0].split("\n## ", 1)[0]


@pytest.mark.parametrize("lang", pages.LANGS)
def test_sample_size_table_follows_the_two_proportion_formula(lang):
    section = _section(pages.get_page("growth", lang).body, "eval-sample-size")
    z = NormalDist().inv_cdf(0.975) + NormalDist().inv_cdf(0.80)
    p = 0.8
    rows = re.findall(r"^\|\s*(\d+)\s*(?:points|个百分点)\s*\|\s*([\d,]+)\s*\|", section, re.M)
    assert len(rows) == 3
    for delta_points, n in rows:
        delta = int(delta_points) / 100
        assert int(n.replace(",", "")) == math.ceil(z ** 2 * 2 * p * (1 - p) / delta ** 2), delta_points
    for n, half_width in ((200, "5.5"), (1000, "2.5")):
        assert f"{100 * 1.96 * math.sqrt(p * (1 - p) / n):.1f}" == half_width
        assert f"±{half_width}" in section


@pytest.mark.parametrize("lang", pages.LANGS)
def test_judge_correction_example_is_the_rogan_gladen_estimate(lang):
    section = _section(pages.get_page("growth", lang).body, "judge-calibration")
    observed, sensitivity, specificity = 0.80, 0.95, 0.60
    true_rate = (observed + specificity - 1) / (sensitivity + specificity - 1)
    assert f"≈ {100 * true_rate:.0f}%" in section


@pytest.mark.parametrize("lang", pages.LANGS)
def test_unit_economics_example_uses_the_listed_api_price(lang):
    body = pages.get_page("growth", lang).body
    per_request = (2000 * 0.25 + 500 * 2.00) / 1e6
    assert f"{per_request:.4f}" in body
    assert f"{per_request * 6000:.2f}" in body and f"{100 * (1 - per_request * 6000 / 20):.0f}%" in body
    assert f"{per_request * 30000:.2f}" in body
    listed = api_prices.get_api_price("gpt-5-mini")  # the price table's row, from the calculator's CSV
    assert (listed.input_usd_per_1m, listed.output_usd_per_1m) == (0.25, 2.00)
