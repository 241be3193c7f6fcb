"""Parsing and validating the numbers people type: '7e9', '7B', '2T', '124M', 1.5e12.

Every entry point (CLI, Gradio handlers, library functions) funnels sizes through these helpers so that a
negative, zero, NaN or infinite value is a clear ValueError everywhere, never a silent default.
"""
from __future__ import annotations

import math
import re

# Above any real quantity here (the largest training budgets are ~1e26 FLOP); beyond it an input is a typo.
MAX_QUANTITY = 1e28
MAX_INPUT_CHARS = 64
_SUFFIX = {"": 1.0, "k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12, "p": 1e15}
_PATTERN = re.compile(r"^\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?)\s*([kmbgtp]?)\s*$", re.IGNORECASE)


_THOUSANDS = re.compile(r"^[-+]?\d{1,3}(,\d{3})+(\.\d*)?")


def _strip_thousands(text: str, name: str) -> str:
    """'1,000,000' -> '1000000'; a comma anywhere else ('1,5B', a decimal comma) is an error, never 15B."""
    if "," not in text:
        return text
    match = _THOUSANDS.match(text)
    if match and "," not in text[match.end():]:
        return text.replace(",", "")
    raise ValueError(f"{name}: cannot read {text!r}: use a dot for decimals (1.5B) and commas only between "
                     "groups of three digits (1,000)")


def parse_quantity(value, name: str = "value") -> float:
    """Turn 7e9, '7e9', '7B', '2T', '124m' or '1,000' into a float. Raises ValueError on anything else."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        text = _strip_thousands(value.replace("_", "").strip(), name)
        if len(text) > MAX_INPUT_CHARS:
            raise ValueError(f"{name}: {len(text)} characters is not a number (examples: 7e9, 7B, 2T, 124M)")
        match = _PATTERN.match(text)
        if not match:
            if text.lower() in {"nan", "inf", "+inf", "-inf", "infinity", "-infinity"}:
                raise ValueError(f"{name} must be a finite number, got {value!r}")
            raise ValueError(f"{name}: cannot read {value!r} as a number (examples: 7e9, 7B, 2T, 124M)")
        number = float(match.group(1)) * _SUFFIX[match.group(2).lower()]
    elif value is None:
        raise ValueError(f"{name} is missing")
    else:
        raise ValueError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if abs(number) > MAX_QUANTITY:
        raise ValueError(f"{name} = {number:.3g} is implausibly large (the limit is {MAX_QUANTITY:.0e})")
    return number


def positive(value, name: str) -> float:
    number = parse_quantity(value, name)
    if number <= 0:
        raise ValueError(f"{name} must be greater than zero, got {value!r}")
    return number


def non_negative(value, name: str) -> float:
    number = parse_quantity(value, name)
    if number < 0:
        raise ValueError(f"{name} must not be negative, got {value!r}")
    return number


def positive_int(value, name: str) -> int:
    number = positive(value, name)
    if number != int(number):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    return int(number)


def fraction(value, name: str) -> float:
    """A utilisation such as MFU: 0 < x <= 1. Accepts '40%' too."""
    if isinstance(value, str) and value.strip().endswith("%"):
        number = positive(value.strip()[:-1], name) / 100
    else:
        number = positive(value, name)
    if number > 1:
        raise ValueError(f"{name} must be a fraction between 0 and 1 (e.g. 0.4), got {value!r}")
    return number


def human(number: float, unit: str = "") -> str:
    """7.0e9 -> '7B', 2.0e12 -> '2T' (for labels, never for parsing back)."""
    for suffix, scale in (("P", 1e15), ("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(number) >= scale:
            return f"{number / scale:.3g}{suffix}{unit}"
    return f"{number:.3g}{unit}"
