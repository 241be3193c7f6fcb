"""The cost form's state <-> URL query parameters (pure functions; the tab wires them to the browser).

Example: ?tab=costs&params=7e9&tokens=2e12&gpu=H100-80GB&gpus=1024&mfu=0.4&price=2.5
Unknown or malformed values are dropped (a shared link never crashes the page); other query parameters such
as `tab` are left to their owners.
"""
from __future__ import annotations

from costs.accelerators import get_accelerator
from costs.presets import PRESETS
from costs.units import fraction, non_negative, positive, positive_int

# form field -> (query key, parser). Order is the order in the URL.
FIELDS = {
    "preset": ("preset", lambda v: v if v in PRESETS else _bad("preset", v)),
    "params": ("params", lambda v: positive(v, "params")),
    "active_params": ("active", lambda v: positive(v, "active params")),
    "tokens": ("tokens", lambda v: positive(v, "tokens")),
    "gpu": ("gpu", lambda v: get_accelerator(v).name),
    "gpus": ("gpus", lambda v: positive_int(v, "gpus")),
    "mfu": ("mfu", lambda v: fraction(v, "mfu")),
    "price": ("price", lambda v: non_negative(v, "price")),
}
QUERY_KEYS = [key for key, _ in FIELDS.values()]


def _bad(name, value):
    raise ValueError(f"bad {name}: {value!r}")


def _format(value) -> str:
    if isinstance(value, bool):
        raise ValueError("booleans are not form values")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e6:
            return str(int(value))
        for digits in range(6, 18):  # shortest text that reads back as the same float
            text = f"{value:.{digits}g}"
            if float(text) == value:
                break
        return text.replace("e+", "e").replace("e0", "e")
    return str(value)


def encode_state(state: dict) -> dict[str, str]:
    """Form state -> query dict with compact values ({'params': '7e9', ...}); empty fields are left out."""
    query: dict[str, str] = {}
    for field, (key, _parse) in FIELDS.items():
        value = state.get(field)
        if value in (None, ""):
            continue
        query[key] = _format(value)
    return query


def decode_state(query) -> dict:
    """Query dict (or Starlette QueryParams) -> form state. Bad values are skipped and listed in '_errors'."""
    state: dict = {}
    errors: list[str] = []
    for field, (key, parse) in FIELDS.items():
        raw = query.get(key) if query is not None else None
        if raw in (None, ""):
            continue
        try:
            state[field] = parse(raw)
        except ValueError as exc:
            errors.append(str(exc))
    if errors:
        state["_errors"] = errors
    return state


# Keeps the address bar in sync without a reload; other parameters (tab, page, lang) are preserved.
# Arguments arrive in the order of QUERY_KEYS (the tab passes the matching components as inputs).
SYNC_URL_JS = """
(...values) => {
  const keys = %s;
  const url = new URL(window.location.href);
  keys.forEach((key, i) => {
    const v = values[i];
    if (v === null || v === undefined || v === "" || Number.isNaN(v)) { url.searchParams.delete(key); }
    else { url.searchParams.set(key, String(v)); }
  });
  url.searchParams.set("tab", "costs");
  window.history.replaceState(window.history.state, "", url.toString());
  return values;
}
""" % repr(QUERY_KEYS).replace("'", '"')
