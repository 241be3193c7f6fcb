"""Model presets with the architecture numbers the attention FLOPs term and the KV cache need."""
from __future__ import annotations

from dataclasses import dataclass

from costs.units import positive


@dataclass(frozen=True)
class ModelPreset:
    key: str
    name: str
    params: float               # total parameters
    active_params: float | None  # per-token parameters for MoE; None for dense
    tokens: float               # training tokens of the published run
    n_layers: int
    hidden: int                 # d_model
    n_heads: int                # query heads
    n_kv_heads: int             # key/value heads (GQA); == n_heads for MHA
    vocab: int
    context: int                # training sequence length
    source: str
    note: str = ""
    kv_elems_per_token_per_layer: int | None = None  # override for non-GQA caches (MLA)
    head_dim_override: int | None = None
    intermediate: int | None = None  # MLP inner size (gated MLPs: gate/up/down); None for MoE (LoRA on experts
    #                                  is not modelled)
    gated_mlp: bool = True           # SwiGLU (gate, up, down) vs GPT-style (up, down)

    @property
    def head_dim(self) -> int:
        return self.head_dim_override or self.hidden // self.n_heads

    @property
    def compute_params(self) -> float:
        return self.active_params or self.params

    @property
    def kv_elems_per_token(self) -> int:
        """K and V elements cached per token over all layers (2·L·n_kv·d_head for GQA/MHA)."""
        per_layer = self.kv_elems_per_token_per_layer or 2 * self.n_kv_heads * self.head_dim
        return self.n_layers * per_layer


PRESETS: dict[str, ModelPreset] = {p.key: p for p in (
    ModelPreset("gpt2-124m", "GPT-2 124M", 124e6, None, 10e9, 12, 768, 12, 12, 50257, 1024,
                "https://github.com/openai/gpt-2/blob/master/model_card.md",
                "OpenAI did not publish the token count; 10B tokens is the llm.c reproduction "
                "(https://github.com/karpathy/llm.c/discussions/481).", intermediate=3072, gated_mlp=False),
    ModelPreset("gpt3-175b", "GPT-3 175B", 175e9, None, 300e9, 96, 12288, 96, 96, 50257, 2048,
                "https://arxiv.org/abs/2005.14165", "Table 2.1 and Section 2.2 (300B training tokens).",
                intermediate=49152, gated_mlp=False),
    ModelPreset("llama-65b", "LLaMA-65B", 65.2e9, None, 1.4e12, 80, 8192, 64, 64, 32000, 2048,
                "https://arxiv.org/abs/2302.13971", "Table 2; MLP 22016 (Hugging Face config). The QLoRA paper's "
                "65B model.", intermediate=22016),
    ModelPreset("llama2-7b", "Llama-2-7B", 6.74e9, None, 2e12, 32, 4096, 32, 32, 32000, 4096,
                "https://arxiv.org/abs/2307.09288", "MHA (no GQA at 7B).", intermediate=11008),
    ModelPreset("llama2-70b", "Llama-2-70B", 69.0e9, None, 2e12, 80, 8192, 64, 8, 32000, 4096,
                "https://arxiv.org/abs/2307.09288", "GQA with 8 KV heads.", intermediate=28672),
    ModelPreset("llama3-8b", "Llama-3-8B", 8.03e9, None, 15e12, 32, 4096, 32, 8, 128256, 8192,
                "https://github.com/meta-llama/llama3/blob/main/MODEL_CARD.md", "15T+ tokens, GQA 8 KV heads.",
                intermediate=14336),
    ModelPreset("llama3-70b", "Llama-3-70B", 70.6e9, None, 15e12, 80, 8192, 64, 8, 128256, 8192,
                "https://github.com/meta-llama/llama3/blob/main/MODEL_CARD.md", "15T+ tokens, GQA 8 KV heads.",
                intermediate=28672),
    ModelPreset("deepseek-v3-like", "DeepSeek-V3-like MoE (671B, 37B active)", 671e9, 37e9, 14.8e12,
                61, 7168, 128, 128, 129280, 4096, "https://arxiv.org/abs/2412.19437",
                "MLA caches a 512-d latent + 64-d RoPE key per layer per token instead of K and V heads.",
                kv_elems_per_token_per_layer=576, head_dim_override=128),
)}


def arch_from_params(params: float) -> ModelPreset:
    """A Llama-like dense shape for a bare parameter count (when no preset is chosen), stated as an assumption.

    N ≈ 12·L·d² with L = d/128 (Llama-2-7B: d 4096, L 32; Llama-2-70B: d 8192, L 80), GQA with 8 KV heads of
    128 dims, MLP = 8/3·d (SwiGLU). Good for memory and roofline estimates, not for exact parameter counts.
    """
    n = float(params)
    hidden = max(512, round((n * 128 / 12) ** (1 / 3) / 512) * 512)  # heads = d/128: a multiple of 4
    layers = max(1, round(hidden / 128))
    heads = hidden // 128
    return ModelPreset("custom", f"Llama-like {n / 1e9:.3g}B (assumed shape)", n, None, 20 * n, layers, hidden,
                       heads, min(8, heads), 128000, 8192, "assumption: costs/presets.py arch_from_params",
                       "shape assumed from the parameter count: L = d/128, 8 KV heads of 128 dims",
                       intermediate=round(hidden * 8 / 3 / 256) * 256)


def get_preset(key: str) -> ModelPreset:
    lookup = key.strip().lower()
    for preset in PRESETS.values():
        if lookup in (preset.key, preset.name.lower()):
            return preset
    raise ValueError(f"Unknown model preset {key!r}. Known presets: {', '.join(PRESETS)}")


def resolve_model(model=None, params=None) -> ModelPreset:
    """A preset by key, or a Llama-like shape assumed from a bare parameter count."""
    if model not in (None, "", "custom"):
        return get_preset(model)
    if params in (None, ""):
        raise ValueError("give a model preset or a parameter count (params)")
    return arch_from_params(positive(params, "params"))
