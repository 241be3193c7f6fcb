"""Where exported models live. Outside the repo by default (they are hundreds of MB); LAB_MODEL_DIR overrides."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def cache_root() -> Path:
    configured = os.environ.get("LAB_MODEL_DIR")
    root = Path(configured).expanduser() if configured else Path.home() / ".cache" / "llm-startup-lab"
    return root


def model_dir(model_id: str) -> Path:
    """Directory holding one exported model: ONNX graph(s), tokenizer files, config, build manifest."""
    return cache_root() / "onnx" / model_id


def sources_dir() -> Path:
    """Assembled source files (e.g. the Qwen GGUF rebuilt from its six packaged parts)."""
    return cache_root() / "sources"
