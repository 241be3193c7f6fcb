"""Shared by the eval scripts: writing a results file."""
from __future__ import annotations

import json
from pathlib import Path


def write_results(path: str | Path, results: dict) -> Path:
    """Write results as indented UTF-8 JSON (parent folders made), say where, return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {path}")
    return path
