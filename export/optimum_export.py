"""Decoder and encoder export through optimum-onnx (the maintained exporter, with KV-cache configs)."""
from __future__ import annotations

from pathlib import Path

from optimum.exporters.onnx import onnx_export_from_model

from export.onnx_configs import DECODER_CONFIGS, BertWithAttentionsOnnxConfig
from export.torch_models import load_model, load_tokenizer
from models.registry import ModelSpec


def export_decoder(spec: ModelSpec, out_dir: Path) -> None:
    """Causal LM with past key values in and present key values out (KV cache), plus attentions."""
    model = load_model(spec, attn_implementation="eager")
    tokenizer = load_tokenizer(spec)
    config_class = DECODER_CONFIGS[model.config.model_type]
    onnx_config = config_class(model.config, task="text-generation", use_past=True, use_past_in_inputs=True)
    onnx_export_from_model(
        model,
        out_dir,
        opset=spec.export.opset,
        task="text-generation-with-past",
        custom_onnx_configs={"model": onnx_config},
        model_kwargs={"output_attentions": True},
        do_validation=False,  # `python -m export --check` runs our own parity at several lengths
    )
    tokenizer.save_pretrained(out_dir)


def export_encoder(spec: ModelSpec, out_dir: Path) -> None:
    """BERT encoder: last_hidden_state plus per-layer attention probabilities."""
    model = load_model(spec, attn_implementation="eager")
    tokenizer = load_tokenizer(spec)
    onnx_config = BertWithAttentionsOnnxConfig(model.config, task="feature-extraction")
    onnx_export_from_model(
        model,
        out_dir,
        opset=spec.export.opset,
        task="feature-extraction",
        custom_onnx_configs={"model": onnx_config},
        model_kwargs={"output_attentions": True},
        do_validation=False,
    )
    tokenizer.save_pretrained(out_dir)
