"""The cost calculator's state <-> URL query parameters (pure functions; the tab wires them to the browser).

Scheme: ?tab=costs&calc=<train|finetune|serve|fleet|breakeven>&<keys of that calculator>. `calc` absent means
train, and the train keys are the ones links have always used. Keys per calculator (values as typed in the
form; sizes accept 7e9 / 7B, fractions 0.4 / 40%):

  train      preset (model preset key), params, active (MoE active params), tokens, gpu, gpus, mfu (0-1),
             price (USD per GPU-hour)
             e.g. ?tab=costs&params=7e9&tokens=2e12&gpu=H100-80GB&gpus=1024&mfu=0.4&price=2.5
  finetune   preset, params, gpu, gpus, method (full|lora|qlora), objective (sft|dpo), rank,
             targets (attention-qv|attention|all-linear), tokens (dataset tokens per epoch), epochs,
             seq (sequence length), price
             e.g. ?tab=costs&calc=finetune&preset=llama-65b&method=qlora&rank=64&targets=all-linear&gpu=L40S
  serve      preset, gpu, gpus, batch, ctx (context tokens), prompt (prompt tokens), weights (fp16|fp8|int4...),
             price
  fleet      preset, params, gpu, qps, prompt, output (tokens per request), ttft, tpot (targets in seconds),
             weights (fp16|bf16|fp8|int8|int4), kv (fp16|bf16|fp8), tp (GPUs per replica), price,
             eff (measured / roofline decode throughput, 0-1)
             e.g. ?tab=costs&calc=fleet&preset=llama3-70b&gpu=H100-80GB&qps=10&ttft=0.45&tpot=0.04
  breakeven  params (or preset), gpu, gpus, util (0-1 utilisation), api_in, api_out (USD per 1M input /
             output tokens), price (USD per GPU-hour), in_tokens, out_tokens (monthly tokens), weights
             e.g. ?tab=costs&calc=breakeven&params=8e9&gpu=H100-80GB&gpus=1&util=0.5&api_in=0.15&api_out=0.6
                  &in_tokens=2e9&out_tokens=5e8

Malformed values, keys of another calculator and an unknown `calc` are dropped and listed in `_errors` (a
shared link never crashes the page); parameters of other owners (tab, doc, lang) are left alone.
`validate_link(query_string)` returns those errors for a whole link (content tests check guide links with it).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Callable
from urllib.parse import parse_qsl, urlsplit

from costs import finetune, serving
from costs.accelerators import get_accelerator
from costs.presets import PRESETS
from costs.units import fraction, non_negative, positive, positive_int

CALCS = ("train", "finetune", "serve", "fleet", "breakeven")
DEFAULT_CALC = "train"
OTHER_OWNERS = ("tab", "doc", "lang")  # app.py and the guide own these


def _choice(name: str, options) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value not in options:
            raise ValueError(f"bad {name}: {value!r} (one of {', '.join(options)})")
        return value
    return parse


_preset = _choice("preset", list(PRESETS))
_size = {name: (lambda v, n=name: positive(v, n)) for name in
         ("params", "active params", "tokens", "qps", "ttft", "tpot", "epochs", "in_tokens", "out_tokens")}
_count = {name: (lambda v, n=name: positive_int(v, n)) for name in
          ("gpus", "rank", "seq", "batch", "ctx", "prompt", "output", "tp")}
_gpu = lambda v: get_accelerator(v).name  # noqa: E731 (a table of parsers reads best as lambdas)
_price = lambda v: non_negative(v, "price")  # noqa: E731

# calc -> {form field: (query key, parser)}; the order is the order in the URL and of the tab's inputs.
FIELDS: dict[str, dict[str, tuple[str, Callable]]] = {
    "train": {
        "preset": ("preset", _preset), "params": ("params", _size["params"]),
        "active_params": ("active", _size["active params"]), "tokens": ("tokens", _size["tokens"]),
        "gpu": ("gpu", _gpu), "gpus": ("gpus", _count["gpus"]), "mfu": ("mfu", lambda v: fraction(v, "mfu")),
        "price": ("price", _price)},
    "finetune": {
        "preset": ("preset", _preset), "params": ("params", _size["params"]), "gpu": ("gpu", _gpu),
        "gpus": ("gpus", _count["gpus"]), "method": ("method", _choice("method", finetune.METHODS)),
        "objective": ("objective", _choice("objective", finetune.OBJECTIVES)),
        "rank": ("rank", _count["rank"]), "targets": ("targets", _choice("targets", finetune.TARGETS)),
        "tokens": ("tokens", _size["tokens"]), "epochs": ("epochs", _size["epochs"]),
        "seq": ("seq", _count["seq"]), "price": ("price", _price)},
    "serve": {
        "preset": ("preset", _preset), "gpu": ("gpu", _gpu), "gpus": ("gpus", _count["gpus"]),
        "batch": ("batch", _count["batch"]), "ctx": ("ctx", _count["ctx"]), "prompt": ("prompt", _count["prompt"]),
        "weights": ("weights", _choice("weights", list(serving.WEIGHT_BYTES))), "price": ("price", _price)},
    "fleet": {
        "preset": ("preset", _preset), "params": ("params", _size["params"]), "gpu": ("gpu", _gpu),
        "qps": ("qps", _size["qps"]), "prompt": ("prompt", _count["prompt"]), "output": ("output", _count["output"]),
        "ttft": ("ttft", _size["ttft"]), "tpot": ("tpot", _size["tpot"]),
        "weights": ("weights", _choice("weights", list(serving.WEIGHT_BYTES))),
        "kv": ("kv", _choice("kv", list(serving.KV_BYTES))), "tp": ("tp", _count["tp"]),
        "price": ("price", _price), "eff": ("eff", lambda v: fraction(v, "eff"))},
    "breakeven": {
        "preset": ("preset", _preset), "params": ("params", _size["params"]), "gpu": ("gpu", _gpu),
        "gpus": ("gpus", _count["gpus"]), "util": ("util", lambda v: fraction(v, "util")),
        "api_in": ("api_in", lambda v: non_negative(v, "api_in")),
        "api_out": ("api_out", lambda v: non_negative(v, "api_out")), "price": ("price", _price),
        "in_tokens": ("in_tokens", _size["in_tokens"]), "out_tokens": ("out_tokens", _size["out_tokens"]),
        "weights": ("weights", _choice("weights", list(serving.WEIGHT_BYTES)))},
}
TRAIN_KEYS = [key for key, _ in FIELDS["train"].values()]
KEYS_BY_CALC = {calc: [key for key, _ in fields.values()] for calc, fields in FIELDS.items()}
# Every key the calculator may own in a URL (plus `calc`); anything else belongs to someone else.
QUERY_KEYS = ["calc"] + sorted({key for keys in KEYS_BY_CALC.values() for key in keys})


def format_value(value) -> str:
    """Compact text that reads back as the same value: 7e9 -> '7e9', 1024.0 -> '1024', 0.4 -> '0.4'."""
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


def encode_state(state: dict, calc: str = DEFAULT_CALC) -> dict[str, str]:
    """Form state -> query dict with compact values ({'params': '7e9', ...}); empty fields are left out."""
    if calc not in FIELDS:
        raise ValueError(f"unknown calc {calc!r} (one of {', '.join(CALCS)})")
    query: dict[str, str] = {} if calc == DEFAULT_CALC else {"calc": calc}
    for field, (key, _parse) in FIELDS[calc].items():
        value = state.get(field)
        if value in (None, ""):
            continue
        query[key] = format_value(value)
    return query


def decode_state(query) -> dict:
    """Query dict (or Starlette QueryParams) -> form state of the chosen calculator.

    {'calc': ...} is present for calculators other than train. Bad values, keys that belong to another
    calculator and an unknown calc are skipped and listed in '_errors'.
    """
    query = query if query is not None else {}
    state: dict = {}
    errors: list[str] = []
    calc = query.get("calc") or DEFAULT_CALC
    if calc not in FIELDS:
        errors.append(f"unknown calc {calc!r} (one of {', '.join(CALCS)}); showing train")
        calc = DEFAULT_CALC
    if calc != DEFAULT_CALC:
        state["calc"] = calc
    for field, (key, parse) in FIELDS[calc].items():
        raw = query.get(key)
        if raw in (None, ""):
            continue
        try:
            state[field] = parse(raw)
        except ValueError as exc:
            errors.append(str(exc))
    foreign = [key for key in query.keys() if key in QUERY_KEYS and key != "calc" and key not in KEYS_BY_CALC[calc]]
    errors += [f"{key!r} is not a {calc} key (its keys: {', '.join(KEYS_BY_CALC[calc])})" for key in foreign]
    if errors:
        state["_errors"] = errors
    return state


def validate_link(query_string) -> list[str]:
    """Errors of a calculator link; [] = it resolves. Takes '?tab=costs&calc=breakeven&params=8e9...', a full
    URL, or the link's parameters as a dict (as content.pages.parse_internal_link gives them)."""
    if isinstance(query_string, Mapping):
        pairs = list(query_string.items())
    else:
        text = urlsplit(query_string).query if "://" in query_string else query_string.split("#")[0].lstrip("?")
        pairs = parse_qsl(text, keep_blank_values=True)
    errors = []
    query: dict[str, str] = {}
    for key, value in pairs:
        if key in query:
            errors.append(f"{key!r} appears twice")
        query[key] = value
    if query.get("tab", "costs") != "costs":
        errors.append(f"tab is {query['tab']!r}, not 'costs'")
    errors += [f"unknown key {key!r}" for key in query if key not in QUERY_KEYS and key not in OTHER_OWNERS]
    errors += [f"{key!r} is empty" for key, value in query.items() if key in QUERY_KEYS and value == ""]
    return errors + decode_state(query).get("_errors", [])


def sync_url_js(calc: str) -> str:
    """JS that keeps the address bar in sync with one calculator's form, without a reload.

    Arguments arrive in the order of that calculator's keys (the tab passes the matching components); keys of
    the other calculators are removed, `calc` is set (removed for train), other owners' parameters are kept.
    """
    keys = KEYS_BY_CALC[calc]
    others = [key for key in QUERY_KEYS if key not in keys and key != "calc"]
    return """
(...values) => {
  const keys = %s;
  const url = new URL(window.location.href);
  %s.forEach((key) => url.searchParams.delete(key));
  keys.forEach((key, i) => {
    const v = values[i];
    if (v === null || v === undefined || v === "" || Number.isNaN(v)) { url.searchParams.delete(key); }
    else { url.searchParams.set(key, String(v)); }
  });
  url.searchParams.set("tab", "costs");
  if (%s) { url.searchParams.delete("calc"); } else { url.searchParams.set("calc", %s); }
  window.history.replaceState(window.history.state, "", url.toString());
  return values;
}
""" % (_js_list(keys), _js_list(others), "true" if calc == DEFAULT_CALC else "false", f'"{calc}"')


def _js_list(items) -> str:
    return "[" + ", ".join(f'"{item}"' for item in items) + "]"


SYNC_URL_JS = sync_url_js(DEFAULT_CALC)  # the train form's snippet (kept for existing callers)
