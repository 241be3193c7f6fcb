"""API prices per 1M tokens (US and Chinese providers): costs/data/api_prices.csv, read-only, dated and sourced.

Columns (stable: the Guide's inference-economics page reads this file too):
  provider, country           company and where it is based (US, CN, FR)
  model                       the API model id as the provider's price page names it
  input_usd_per_1m            USD per 1M input tokens (standard, uncached)
  output_usd_per_1m           USD per 1M output tokens
  cached_input_usd_per_1m     USD per 1M cached input tokens (prompt-cache hit); empty where not published
  batch_discount              share taken off by the provider's batch API (0.5 = 50 % off); empty where none
  original_currency           the currency of the price page (USD or CNY)
  original_input_per_1m, original_output_per_1m, original_cached_input_per_1m   the page's own figures
  fx_usd_per_unit, fx_as_of   rate used to convert to USD (1 for USD) and its date
  source_url                  the provider's official pricing page
  as_of                       when the price was read; "2025" = known for 2025 without a finer date: prices
                              change often, check the page before relying on a figure
  note                        tiers, conditions and what is not counted
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DATA_FILE = Path(__file__).with_name("data") / "api_prices.csv"
COLUMNS = ("provider", "country", "model", "input_usd_per_1m", "output_usd_per_1m", "cached_input_usd_per_1m",
           "batch_discount", "original_currency", "original_input_per_1m", "original_output_per_1m",
           "original_cached_input_per_1m", "fx_usd_per_unit", "fx_as_of", "source_url", "as_of", "note")


@dataclass(frozen=True)
class ApiPrice:
    provider: str
    country: str
    model: str
    input_usd_per_1m: float
    output_usd_per_1m: float
    cached_input_usd_per_1m: float | None
    batch_discount: float | None
    original_currency: str
    original_input_per_1m: float  # the price page's own figures, in original_currency
    original_output_per_1m: float
    fx_usd_per_unit: float
    source_url: str
    as_of: str
    note: str

    @property
    def label(self) -> str:
        return (f"{self.provider} {self.model}: ${self.input_usd_per_1m:g} in / ${self.output_usd_per_1m:g} out "
                f"({self.as_of})")


def _optional(text: str) -> float | None:
    return float(text) if text.strip() else None


@lru_cache(maxsize=1)
def load_api_prices() -> tuple[ApiPrice, ...]:
    with DATA_FILE.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ValueError(f"{DATA_FILE.name}: columns changed; expected {', '.join(COLUMNS)}")
        return tuple(ApiPrice(row["provider"], row["country"], row["model"], float(row["input_usd_per_1m"]),
                              float(row["output_usd_per_1m"]), _optional(row["cached_input_usd_per_1m"]),
                              _optional(row["batch_discount"]), row["original_currency"],
                              float(row["original_input_per_1m"]), float(row["original_output_per_1m"]),
                              float(row["fx_usd_per_unit"]), row["source_url"], row["as_of"], row["note"])
                     for row in reader)


# The one rendering of the table, for the Guide's inference page ({{table:api-prices}}) and the calculator tab.
_HEADERS = {
    "en": ("Provider (country)", "Model (API id)", "Input", "Cached input", "Output", "Batch", "As of", "Pricing page"),
    "zh": ("厂商（国家）", "模型（API 名称）", "输入", "缓存输入", "输出", "批处理", "价格日期", "定价页面"),
}
_WORDS = {
    "en": {"none": "none listed", "same": "same", "page": "pricing", "off": "{:.0%} off", "unlisted": "—",
           "converted": "{usd} ({currency} {original:g})", "provider": "{provider} ({country})",
           "countries": {}},
    "zh": {"none": "未列出", "same": "同上", "page": "定价", "off": "{:.0f} 折", "unlisted": "—",
           "converted": "{usd}（{currency} {original:g}）", "provider": "{provider}（{country}）",
           "countries": {"US": "美国", "CN": "中国", "FR": "法国"}},
}


def usd_text(value: float) -> str:
    """A price as the providers print it: at least two decimals, more only where the price has them."""
    text = f"{value:.4f}".rstrip("0")
    return text if len(text.split(".")[1]) >= 2 else f"{value:.2f}"


def markdown_table(lang: str = "en") -> str:
    """Every row of costs/data/api_prices.csv as a Markdown table, in the CSV's order (USD per 1M tokens)."""
    if lang not in _HEADERS:
        raise ValueError(f"unknown language {lang!r}; expected one of {', '.join(_HEADERS)}")
    words = _WORDS[lang]
    lines = ["| " + " | ".join(_HEADERS[lang]) + " |", "|" + "---|" * len(_HEADERS[lang])]
    previous_url = None
    for p in load_api_prices():
        price_in, price_out = usd_text(p.input_usd_per_1m), usd_text(p.output_usd_per_1m)
        if p.original_currency != "USD":  # a converted price also shows the figure on the provider's page
            price_in, price_out = (words["converted"].format(usd=usd, currency=p.original_currency, original=original)
                                   for usd, original in ((price_in, p.original_input_per_1m),
                                                         (price_out, p.original_output_per_1m)))
        cached = usd_text(p.cached_input_usd_per_1m) if p.cached_input_usd_per_1m is not None else words["unlisted"]
        discount = p.batch_discount
        batch = (words["off"].format(discount if lang == "en" else 10 * (1 - discount)) if discount
                 else words["none"])
        page = words["same"] if p.source_url == previous_url else f"[{p.provider} {words['page']}]({p.source_url})"
        previous_url = p.source_url
        who = words["provider"].format(provider=p.provider, country=words["countries"].get(p.country, p.country))
        lines.append(f"| {who} | {p.model} | {price_in} | {cached} | {price_out} | {batch} | {p.as_of} | {page} |")
    return "\n".join(lines)


def get_api_price(model: str) -> ApiPrice:
    for price in load_api_prices():
        if price.model.lower() == model.strip().lower():
            return price
    raise ValueError(f"Unknown API model {model!r}. Known: {', '.join(p.model for p in load_api_prices())}")
