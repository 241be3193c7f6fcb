"""Typed estimator results and their JSON form.

Every estimator returns a frozen dataclass; `to_dict()` is `dataclasses.asdict` without the fields that were
not computed (None), so the JSON keeps the long-standing contract "a key is present when it was computed"
(e.g. `wall_days` only when a GPU count is given) and callers test `result.wall_days is not None` instead of
probing a dict for keys.
"""
from __future__ import annotations

from dataclasses import asdict


def _drop_none(value):
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


class JsonResult:
    """Mixin for result dataclasses: JSON-ready dict via dataclasses.asdict, None fields left out."""

    def to_dict(self) -> dict:
        return _drop_none(asdict(self))  # type: ignore[call-overload]
