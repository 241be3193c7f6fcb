"""Decoder and encoder export through optimum-onnx (the maintained exporter, with KV-cache configs)."""
from __future__ import annotations

from pathlib import Path

from optimum.exporters.onnx import onnx_export_from_model

from export.onnx_configs import DECODER_CONFIGS, BertWithAttentionsOnnxConfig
from models.registry import ModelSpec


def export_causal_lm(model, tokenizer, out_dir: Path, opset: int = 18) -> None:
    """Causal LM with past key values in and present key values out (KV cache), plus attention outputs.

    `model` must be loaded with attn_implementation="eager" (attention probabilities exist only there).
    """
    config_class = DECODER_CONFIGS[model.config.model_type]
    onnx_config = config_class(model.config, task="text-generation", use_past=True, use_past_in_inputs=True)
    onnx_export_from_model(
        model, out_dir, opset=opset, task="text-generation-with-past",
        custom_onnx_configs={"model": onnx_config}, model_kwargs={"output_attentions": True},
        do_validation=False,  # `python -m export --check` runs our own parity at several lengths
    )
    tokenizer.save_pretrained(out_dir)


def export_bert_encoder(model, tokenizer, out_dir: Path, opset: int = 18) -> None:
    """BERT encoder: last_hidden_state plus per-layer attention probabilities."""
    onnx_config = BertWithAttentionsOnnxConfig(model.config, task="feature-extraction")
    onnx_export_from_model(
        model, out_dir, opset=opset, task="feature-extraction",
        custom_onnx_configs={"model": onnx_config}, model_kwargs={"output_attentions": True},
        do_validation=False,
    )
    tokenizer.save_pretrained(out_dir)


def export_decoder(spec: ModelSpec, out_dir: Path) -> None:
    from export.torch_models import load_model, load_tokenizer

    export_causal_lm(load_model(spec), load_tokenizer(spec), out_dir, spec.export.opset)


def export_encoder(spec: ModelSpec, out_dir: Path) -> None:
    from export.torch_models import load_model, load_tokenizer

    export_bert_encoder(load_model(spec), load_tokenizer(spec), out_dir, spec.export.opset)
