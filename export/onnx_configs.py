"""optimum export configs that also emit attention probabilities, so the Attention tab reads the weights from
the same graphs that serve the demos. Needs the model loaded with attn_implementation="eager" (SDPA returns
no weights) and model_kwargs={"output_attentions": True}."""
from __future__ import annotations

from optimum.exporters.onnx.model_configs import BertOnnxConfig, LlamaOnnxConfig, Qwen2OnnxConfig


def _add_attentions(outputs: dict, num_layers: int, causal: bool) -> dict:
    key_axis = "past_sequence_length + sequence_length" if causal else "sequence_length"
    for layer in range(num_layers):
        outputs[f"attentions.{layer}"] = {0: "batch_size", 2: "sequence_length", 3: key_axis}
    return outputs


class LlamaWithAttentionsOnnxConfig(LlamaOnnxConfig):
    @property
    def outputs(self):
        return _add_attentions(super().outputs, self._normalized_config.num_layers, causal=True)


class Qwen2WithAttentionsOnnxConfig(Qwen2OnnxConfig):
    @property
    def outputs(self):
        return _add_attentions(super().outputs, self._normalized_config.num_layers, causal=True)


class BertWithAttentionsOnnxConfig(BertOnnxConfig):
    @property
    def outputs(self):
        return _add_attentions(super().outputs, self._normalized_config.num_layers, causal=False)


DECODER_CONFIGS = {"llama": LlamaWithAttentionsOnnxConfig, "qwen2": Qwen2WithAttentionsOnnxConfig}
