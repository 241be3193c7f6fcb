"""Shared by the eval scripts: writing a results file and naming the commit it came from."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path


def git_commit() -> str:
    """HEAD, with "-dirty" when tracked files differ from it (the results then come from uncommitted code)."""
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=40"], capture_output=True,
                              text=True, check=True, cwd=Path(__file__).resolve().parent).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def write_results(path: str | Path, results: dict) -> Path:
    """Write results as indented UTF-8 JSON (parent folders made), say where, return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {path}")
    return path
