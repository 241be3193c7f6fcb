"""CPU variants of the exported fp32 graphs: block-quantized weights (onnxruntime's MatMulNBits) in a fused graph.

Why: a decode step reads every weight once, and on a 2-core CPU it also pays for every graph node. Two
changes, both checked by `quality_gate` against the fp32 export:

1. Weights in 4- or 8-bit blocks of 32 along K (MatMulNBits, int8 activations: accuracy_level 4, the
   fast MLAS path on AVX2). The fp32 graphs are dequantized GGUF weights (SmolLM2: Q4_1 layers, Q8_0
   embedding; Qwen: mostly Q5_0/Q8_0), so each matrix takes the candidate recipe of least error and most
   come out bit-exact (`quantize_weight`):
     - Q8_0 / Q5_0 / Q4_0 blocks: 8-bit symmetric, scale absmax/127 or absmax/128 (exact);
     - Q4_1 blocks (value = d*q + m, q in 0..15, any float m): 4-bit with scale d; the part of m an
       integer zero point cannot hold is added back by a small fp32 matmul of per-block activation
       sums (the "min correction"). Without it SmolLM2's perplexity rises 26 %; with it the weights
       are exact.
   The tied SmolLM2 head (MatMul by Transpose(embedding)) is quantized from the transposed embedding;
   quantizers that only look for constant B skip it and leave 28M fp32 parameters on the per-token path.
2. For decoders, a fused graph (`build_fused_decoder`) with the same inputs and outputs as optimum's
   (logits, present.*, attentions.*): SkipSimplifiedLayerNormalization, GroupQueryAttention (rotary, KV
   cache, causal softmax; qk_output=2 returns the attention probabilities), q/k/v and gate/up packed into
   one matmul each. ~25 nodes per layer instead of ~100; fp32 logits within 1e-4 of the export.

The remaining difference from fp32 is the int8 rounding of activations inside MatMulNBits: perplexity
+0.5-0.7 %, greedy tokens identical on some prompts and diverging after a few tokens on others
(near-ties). accuracy_level 1 (fp32 activations) is exact but as slow as fp32 on AVX2.

`add_cpu_variants(model_dir, spec)` writes the variants, runs the gate, and returns manifest entries;
a variant is the CPU default only when the gate passes, never the CUDA default.
CLI: `python -m export.quantize [--only ID ...] [--lossy-int4]` does the same for models already in the
cache and merges the entries into their build.json.
"""
from __future__ import annotations

from export.quantize.blocks import BLOCK, QuantizedWeight, dequantize, quantize_weight
from export.quantize.fused import build_fused_decoder, rotary_cache
from export.quantize.gate import (
                                  CLASSIFIER_TOLERANCE,
                                  GATE_PROMPTS,
                                  GATE_TOKENS,
                                  PERPLEXITY_TEXT,
                                  PPL_TOLERANCE,
                                  classifier_gate,
                                  classifier_texts,
                                  decoder_gate,
                                  format_gate,
                                  is_decoder,
                                  quality_gate,
)
from export.quantize.graph import (
                                  ALL_INT4,
                                  INT8,
                                  LOSSLESS_FIRST,
                                  MS_DOMAIN,
                                  Recipe,
                                  load_model,
                                  quantize_model,
                                  save_model,
                                  untie_lm_head,
                                  weight_matmuls,
)
from export.quantize.variants import add_cpu_variants, update_manifest, write_classifier_variant, write_decoder_variant

__all__ = [
    "ALL_INT4", "BLOCK", "CLASSIFIER_TOLERANCE", "GATE_PROMPTS", "GATE_TOKENS", "INT8", "LOSSLESS_FIRST", "MS_DOMAIN",
    "PERPLEXITY_TEXT", "PPL_TOLERANCE", "QuantizedWeight", "Recipe", "add_cpu_variants", "build_fused_decoder",
    "classifier_gate", "classifier_texts", "decoder_gate", "dequantize", "format_gate", "is_decoder", "load_model",
    "quality_gate", "quantize_model", "quantize_weight", "rotary_cache", "save_model", "untie_lm_head",
    "update_manifest", "weight_matmuls", "write_classifier_variant", "write_decoder_variant",
]
