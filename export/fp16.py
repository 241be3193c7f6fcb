"""The GPU precision: an fp16 copy of an exported graph (weights, activations and KV cache in fp16).

The ops that overflow or lose too much in fp16 stay in fp32: RMSNorm/LayerNorm statistics (Pow,
ReduceMean, Sqrt), the attention Softmax, and the rotary-embedding angle computation (position x inverse
frequency reaches hundreds of radians, where fp16 keeps only about two decimals). Without these blocks, an
H100 run (scripts/gpu/results-h100-2026-11-22-run1.txt) gave greedy output that left fp32's within 32
tokens on 5 of 5 prompts. `python -m export --check` (and scripts/gpu/measure.py) check
for NaN and compare greedy tokens with fp32.
"""
from __future__ import annotations

from pathlib import Path

import onnx
from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

FP32_OPS = [*DEFAULT_OP_BLOCK_LIST, "Pow", "ReduceMean", "Sqrt", "Softmax"]
TWO_GB = 2**31 - 2**20


def write_fp16_variant(model_dir: Path, source: str = "model.onnx", target: str = "model_fp16.onnx") -> dict:
    model = onnx.load(str(model_dir / source))  # loads external data too
    rotary = [node.name for node in model.graph.node if "rotary_emb" in node.name]
    half = convert_float_to_float16(model, keep_io_types=False, op_block_list=FP32_OPS, node_block_list=rotary)
    large = half.ByteSize() > TWO_GB
    onnx.save(half, str(model_dir / target), save_as_external_data=large,
              location=f"{target}_data" if large else None)
    return {"fp16": {"file": target, "precision": "fp16", "default_for": ["cuda"]}}
