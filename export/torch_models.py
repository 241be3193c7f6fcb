"""Load the PyTorch reference models from the verified packaged weights (for export and parity)."""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

from models.registry import ModelSpec
from models.sources import source_path


def load_tokenizer(spec: ModelSpec):
    path = source_path(spec)
    if spec.gguf_file:
        return AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    return AutoTokenizer.from_pretrained(str(path))


def load_model(spec: ModelSpec, attn_implementation: str = "eager"):
    """float32, eval mode; eager attention so attention probabilities exist (SDPA returns none)."""
    path = source_path(spec)
    if spec.gguf_file:
        model = AutoModelForCausalLM.from_pretrained(
            str(path.parent), gguf_file=path.name, dtype=torch.float32, attn_implementation=attn_implementation
        )
    else:
        model = AutoModel.from_pretrained(str(path), dtype=torch.float32, attn_implementation=attn_implementation)
    return model.eval()
