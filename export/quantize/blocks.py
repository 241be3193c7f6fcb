"""Block quantization of weight matrices onto the MatMulNBits layout, exact where the source was a GGUF grid.

See export/quantize/__init__.py for why and which recipes exist.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

BLOCK = 32


@dataclass
class QuantizedWeight:
    bits: int
    block_size: int
    packed: np.ndarray  # uint8 [N, k_blocks, block_size * bits / 8]
    scales: np.ndarray  # float32 [N * k_blocks]
    zero_points: np.ndarray | None  # uint8, packed like MatMulNBits wants; None = 2**(bits-1)
    correction: np.ndarray | None  # float32 [k_blocks, N]: added as blocksum(A) @ correction
    max_abs_error: float  # of the dequantized weight (with correction) against fp32
    recipe: str


def _blocks(weight: np.ndarray, block_size: int) -> np.ndarray:
    """[K, N] -> [N, k_blocks, block_size] (zero-padded along K)."""
    k, n = weight.shape
    k_blocks = math.ceil(k / block_size)
    padded = np.zeros((k_blocks * block_size, n), dtype=np.float32)
    padded[:k] = weight
    return np.ascontiguousarray(padded.T).reshape(n, k_blocks, block_size)


def _pack(q: np.ndarray, bits: int) -> np.ndarray:
    if bits == 8:
        return q.astype(np.uint8)
    q = q.astype(np.uint8)
    return (q[..., 0::2] | (q[..., 1::2] << 4)).astype(np.uint8)


def _pack_zero_points(zp: np.ndarray, bits: int) -> np.ndarray:
    """[N, k_blocks] -> MatMulNBits layout: 8-bit one byte each; 4-bit two per byte, rows padded to bytes."""
    if bits == 8:
        return zp.astype(np.uint8).reshape(-1)
    n, k_blocks = zp.shape
    if k_blocks % 2:
        zp = np.concatenate([zp, np.zeros((n, 1), dtype=zp.dtype)], axis=1)
    zp = zp.astype(np.uint8)
    return (zp[:, 0::2] | (zp[:, 1::2] << 4)).reshape(-1)


def _symmetric(blocks: np.ndarray, bits: int, divisor: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """scale = absmax / divisor; q = round(w / scale) + 2**(bits-1) (MatMulNBits' default zero point)."""
    half = 2 ** (bits - 1)
    absmax = np.abs(blocks).max(-1)
    scales = np.where(absmax > 0, absmax / divisor, 1.0).astype(np.float32)
    q = np.clip(np.rint(blocks / scales[..., None]), -half, half - 1)
    recon = q * scales[..., None]
    return (q + half).astype(np.uint8), scales, recon


def _asymmetric(blocks: np.ndarray, bits: int, correct_min: bool):
    """scale = (max - min) / (2**bits - 1); integer zero point; optional exact min correction."""
    levels = 2**bits - 1
    lo, hi = blocks.min(-1), blocks.max(-1)
    if not correct_min:  # the range must hold 0 so that an integer zero point exists (onnxruntime's RTN)
        lo, hi = np.minimum(lo, 0), np.maximum(hi, 0)
    scales = np.where(hi > lo, (hi - lo) / levels, 1.0).astype(np.float32)
    zp = np.clip(np.rint(-lo / scales), 0, levels)
    q = np.clip(np.rint(blocks / scales[..., None] + zp[..., None]), 0, levels)
    recon = (q - zp[..., None]) * scales[..., None]
    correction = None
    if correct_min:
        # value = scale * (q - zp) + residual, residual = lo + zp * scale (|residual| <= scale / 2)
        q = np.clip(np.rint((blocks - lo[..., None]) / scales[..., None]), 0, levels)
        residual = (lo + zp * scales).astype(np.float32)
        recon = (q - zp[..., None]) * scales[..., None] + residual[..., None]
        correction = np.ascontiguousarray(residual.T)  # [k_blocks, N]
    return q.astype(np.uint8), scales, zp.astype(np.uint8), recon, correction


def quantize_weight(weight: np.ndarray, recipes: tuple[str, ...], block_size: int = BLOCK) -> QuantizedWeight:
    """Quantize B [K, N] with each recipe and keep the one of least max error (ties: the first listed).

    Recipes: 'q4' (4-bit, integer zero point), 'q4c' (4-bit + exact min correction), 'q4s' (4-bit
    symmetric), 'q8' (8-bit symmetric, scale absmax/127 or /128, whichever is exact for the block).
    """
    blocks = _blocks(weight, block_size)
    k = weight.shape[0]
    best: QuantizedWeight | None = None
    for recipe in recipes:
        correction = zp = None
        if recipe == "q8":
            bits = 8
            q127, s127, r127 = _symmetric(blocks, 8, 127.0)
            q128, s128, r128 = _symmetric(blocks, 8, 128.0)
            use128 = np.abs(r128 - blocks).max(-1) < np.abs(r127 - blocks).max(-1)
            q = np.where(use128[..., None], q128, q127)
            scales = np.where(use128, s128, s127)
            recon = np.where(use128[..., None], r128, r127)
        elif recipe == "q4s":
            bits = 4
            q, scales, recon = _symmetric(blocks, 4, 8.0)
        elif recipe in ("q4", "q4c"):
            bits = 4
            q, scales, zp, recon, correction = _asymmetric(blocks, 4, correct_min=recipe == "q4c")
        else:
            raise ValueError(f"unknown quantization recipe {recipe!r}")
        error = float(np.abs(recon - blocks).max())
        if best is None or error < best.max_abs_error * 0.999:  # a lossless recipe wins over a lossy one
            best = QuantizedWeight(bits, block_size, _pack(q, bits), scales.reshape(-1).astype(np.float32),
                                   None if zp is None else _pack_zero_points(zp, bits), correction, error, recipe)
    assert best is not None and k > 0
    return best


def dequantize(qw: QuantizedWeight, k: int) -> np.ndarray:
    """The weight [K, N] a QuantizedWeight stands for (for tests and error reports)."""
    n, k_blocks, _ = qw.packed.shape
    if qw.bits == 8:
        q = qw.packed.astype(np.float32)
    else:
        q = np.stack([qw.packed & 0x0F, qw.packed >> 4], axis=-1).reshape(n, k_blocks, -1).astype(np.float32)
    if qw.zero_points is None:
        zp = np.full((n, k_blocks), 2 ** (qw.bits - 1), dtype=np.float32)
    elif qw.bits == 8:
        zp = qw.zero_points.reshape(n, k_blocks).astype(np.float32)
    else:
        zp = np.stack([qw.zero_points & 0x0F, qw.zero_points >> 4], -1).reshape(n, -1)[:, :k_blocks].astype(np.float32)
    values = (q - zp[..., None]) * qw.scales.reshape(n, k_blocks)[..., None]
    if qw.correction is not None:
        values = values + qw.correction.T[..., None]
    return values.reshape(n, -1)[:, :k].T
