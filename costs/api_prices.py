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
                              float(row["fx_usd_per_unit"]), row["source_url"], row["as_of"], row["note"])
                     for row in reader)


def get_api_price(model: str) -> ApiPrice:
    for price in load_api_prices():
        if price.model.lower() == model.strip().lower():
            return price
    raise ValueError(f"Unknown API model {model!r}. Known: {', '.join(p.model for p in load_api_prices())}")
