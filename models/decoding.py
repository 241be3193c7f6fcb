"""The decode loop shared by Generate and Translate: prefill once, then one ONNX step per token.

The KV cache stays in onnxruntime values (OrtValue) between steps: each step binds the previous step's
`present.*` outputs as the next step's `past_key_values.*` inputs through IO binding, so no cache tensor
goes through numpy. On CUDA the cache never leaves the GPU; only the last position's logits come back.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import onnxruntime as ort

from models.paths import model_dir
from models.runtime import get_session_info
from models.sampling import SamplingSettings, choose_token, top_alternatives
from models.tokenization import get_tokenizer

# Prompts are prefilled in chunks so the logits of one chunk stay below this many bytes
# ([chunk, vocab] float32): a 4k-token prompt would otherwise ask for GBs of logits at once.
PREFILL_LOGITS_BUDGET = 64 * 2**20


@dataclass
class Step:
    token_id: int
    text: str  # text this token adds (may be "" while a multi-byte character is incomplete)
    alternatives: list[tuple[str, float]] = field(default_factory=list)  # model's top-5 (token, prob)
    finish_reason: str | None = None  # "eos", "length", "stop_string", "stopped" on the last step


class IncrementalDetokenizer:
    """Text deltas for a growing id list without re-decoding everything (the TGI/HF streamer approach)."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.prefix_offset = 0
        self.read_offset = 0

    def add(self, token_id: int) -> str:
        self.ids.append(token_id)
        prefix = self.tokenizer.decode(self.ids[self.prefix_offset:self.read_offset], skip_special_tokens=True)
        text = self.tokenizer.decode(self.ids[self.prefix_offset:], skip_special_tokens=True)
        if len(text) > len(prefix) and not text.endswith("\ufffd"):
            self.prefix_offset = self.read_offset
            self.read_offset = len(self.ids)
            return text[len(prefix):]
        return ""


class OnnxCausalLM:
    """A decoder-only ONNX graph exported with past key values (optimum layout)."""

    def __init__(self, model_id: str, variant: str = "default"):
        self.model_id = model_id
        self.session, self.info = get_session_info(model_id, variant)
        self.tokenizer = get_tokenizer(model_id)
        config = json.loads((model_dir(model_id) / "config.json").read_text())
        self.num_layers = config["num_hidden_layers"]
        self.kv_heads = config.get("num_key_value_heads", config["num_attention_heads"])
        self.head_dim = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
        self.vocab_size = config["vocab_size"]
        self.max_context = config.get("max_position_embeddings", 2048)
        inputs = {i.name: i for i in self.session.get_inputs()}
        self.has_position_ids = "position_ids" in inputs
        self.kv_dtype = np.float16 if "float16" in inputs["past_key_values.0.key"].type else np.float32
        self.on_cuda = self.info.provider == "CUDAExecutionProvider"
        self.device_type = "cuda" if self.on_cuda else "cpu"
        self.eos_ids = self._eos_ids(config)

    def _eos_ids(self, config: dict) -> set[int]:
        ids = set()
        for source in (config.get("eos_token_id"), self.tokenizer.eos_token_id):
            if isinstance(source, int):
                ids.add(source)
            elif isinstance(source, list):
                ids.update(source)
        for token in ("<|im_end|>", "<|endoftext|>"):
            token_id = self.tokenizer.convert_tokens_to_ids(token)
            if isinstance(token_id, int) and token_id != self.tokenizer.unk_token_id:
                ids.add(token_id)
        return ids

    # --- one forward pass -------------------------------------------------------------------------
    def _empty_past(self) -> list[ort.OrtValue]:
        empty = np.zeros((1, self.kv_heads, 0, self.head_dim), dtype=self.kv_dtype)
        return [ort.OrtValue.ortvalue_from_numpy(empty, self.device_type, 0)
                for _ in range(2 * self.num_layers)]

    def forward(self, ids: np.ndarray, past: list[ort.OrtValue], past_len: int) -> tuple[np.ndarray, list]:
        """Run `ids` (one row) after `past_len` cached positions; returns last-position logits, new cache."""
        binding = self.session.io_binding()
        total = past_len + ids.shape[1]
        binding.bind_cpu_input("input_ids", ids.astype(np.int64))
        binding.bind_cpu_input("attention_mask", np.ones((1, total), dtype=np.int64))
        if self.has_position_ids:
            binding.bind_cpu_input("position_ids", np.arange(past_len, total, dtype=np.int64)[None, :])
        for layer in range(self.num_layers):
            binding.bind_ortvalue_input(f"past_key_values.{layer}.key", past[2 * layer])
            binding.bind_ortvalue_input(f"past_key_values.{layer}.value", past[2 * layer + 1])
        binding.bind_output("logits", "cpu")  # small: [1, chunk, vocab]; sampling happens on the host
        for layer in range(self.num_layers):
            binding.bind_output(f"present.{layer}.key", self.device_type)
            binding.bind_output(f"present.{layer}.value", self.device_type)
        self.session.run_with_iobinding(binding)
        outputs = binding.get_outputs()
        logits = outputs[0].numpy()[0, -1].astype(np.float32)
        return logits, outputs[1:]

    def prefill(self, prompt_ids: list[int]) -> tuple[np.ndarray, list]:
        chunk = max(16, PREFILL_LOGITS_BUDGET // (4 * self.vocab_size))
        past, done = self._empty_past(), 0
        ids = np.asarray(prompt_ids, dtype=np.int64)[None, :]
        while done < ids.shape[1]:
            logits, past = self.forward(ids[:, done:done + chunk], past, done)
            done += min(chunk, ids.shape[1] - done)
        return logits, past

    # --- the loop -----------------------------------------------------------------------------------
    def stream(self, prompt_ids: list[int], settings: SamplingSettings,
               should_stop: Callable[[], bool] | None = None, alternatives: int = 0) -> Iterator[Step]:
        """Yield one Step per generated token; the last Step carries finish_reason."""
        if not prompt_ids:
            raise ValueError("the prompt is empty")
        if len(prompt_ids) + 1 > self.max_context:
            raise ValueError(f"prompt of {len(prompt_ids)} tokens does not fit the {self.max_context}-token context")
        budget = min(settings.max_new_tokens, self.max_context - len(prompt_ids))
        rng = np.random.default_rng(settings.seed)
        detok = IncrementalDetokenizer(self.tokenizer)
        seen = np.asarray(prompt_ids, dtype=np.int64)
        generated_text = ""
        logits, past = self.prefill(prompt_ids)
        position = len(prompt_ids)
        for index in range(budget):
            token = choose_token(logits, seen, settings, rng)
            alts = [(self.tokenizer.decode([i]), p) for i, p in top_alternatives(logits, alternatives)] if alternatives else []
            if token in self.eos_ids:
                yield Step(token, "", alts, "eos")
                return
            delta = detok.add(token)
            generated_text += delta
            seen = np.append(seen, token)
            finish = None
            hit = next((s for s in settings.stop_strings if s in generated_text[-(len(delta) + len(s)):]), None) if delta else None
            if hit:
                cut = generated_text.rfind(hit)
                delta = delta[: max(0, len(delta) - (len(generated_text) - cut))]
                finish = "stop_string"
            elif should_stop and should_stop():
                finish = "stopped"
            elif index == budget - 1:
                finish = "length"
            yield Step(token, delta, alts, finish)
            if finish:
                return
            logits, past = self.forward(np.array([[token]], dtype=np.int64), past, position)
            position += 1


@dataclass
class GenerationStats:
    """Measured per request: time to first token and decode speed (what the UI badge shows)."""

    started: float = field(default_factory=time.perf_counter)
    first_token_at: float | None = None
    tokens: int = 0

    def on_token(self) -> None:
        self.tokens += 1
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()

    @property
    def ttft_ms(self) -> float | None:
        return None if self.first_token_at is None else (self.first_token_at - self.started) * 1000

    @property
    def tokens_per_s(self) -> float | None:
        if self.first_token_at is None or self.tokens < 2:
            return None
        elapsed = time.perf_counter() - self.first_token_at
        return (self.tokens - 1) / elapsed if elapsed > 0 else None
