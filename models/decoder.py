"""One decoder abstraction: an exported causal-LM ONNX graph, its config read once, every input built here.

Serving (models.engine), the Attention tab, the parity check, the quantization gate, the benchmarks and the
GPU script all drive decoders through `DecoderGraph`; nobody else builds `input_ids` / `attention_mask` /
`position_ids` / `past_key_values.*` feeds.

Two ways to hold the KV cache:

- **sequence cache** (`forward`, `prefill`, `greedy`, `perplexity`): one sequence, the graph's `present.*`
  outputs become the next call's `past_key_values.*` (OrtValues, so on CUDA they never leave the device).
  Works with every export (optimum's graph and the fused one).
- **slot cache** (`KVSlots`, `prefill_slot`, `decode_slots`): the fused graph (GroupQueryAttention, written
  by export/quantize.py) reads and writes one pre-allocated buffer per layer, [slots, kv_heads, length,
  head_dim], bound as both past and present (onnxruntime's past/present buffer sharing: the kernel writes
  the new key/value at position `seqlens_k` of each row in place). Sequences of different lengths share one
  run: row b attends to its own first `lengths[b] + 1` positions. This is what lets the engine step every
  active visitor with one onnxruntime run per token.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort

# Prompts are prefilled in chunks so the logits of one chunk stay below this many bytes
# ([chunk, vocab] float32): a 4k-token prompt would otherwise ask for GBs of logits at once.
PREFILL_LOGITS_BUDGET = 64 * 2**20
FUSED_PRODUCER = "export.quantize"  # producer_name of the fused (GroupQueryAttention) graphs
_EXTRA_EOS_TOKENS = ("<|im_end|>", "<|endoftext|>")  # chat-turn ends of SmolLM2 / Qwen templates


def eos_token_ids(config: dict, tokenizer) -> frozenset[int]:
    """Every id that ends a generation: config and tokenizer EOS plus the chat templates' end-of-turn tokens."""
    ids: set[int] = set()
    for source in (config.get("eos_token_id"), getattr(tokenizer, "eos_token_id", None)):
        if isinstance(source, int):
            ids.add(source)
        elif isinstance(source, list):
            ids.update(source)
    for token in _EXTRA_EOS_TOKENS:
        token_id = tokenizer.convert_tokens_to_ids(token)
        if isinstance(token_id, int) and token_id != tokenizer.unk_token_id:
            ids.add(token_id)
    return frozenset(ids)


@dataclass(frozen=True)
class DecoderConfig:
    """What the decode code needs from config.json, read once (nanoGPT-style config object)."""

    model_type: str
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab_size: int
    max_context: int
    eos_ids: frozenset[int] = field(default_factory=frozenset)

    @classmethod
    def from_dir(cls, model_dir: Path, tokenizer=None) -> "DecoderConfig":
        config = json.loads((Path(model_dir) / "config.json").read_text())
        heads = config["num_attention_heads"]
        return cls(
            model_type=config.get("model_type", ""),
            layers=config["num_hidden_layers"],
            heads=heads,
            kv_heads=config.get("num_key_value_heads", heads),
            head_dim=config.get("head_dim") or config["hidden_size"] // heads,
            vocab_size=config["vocab_size"],
            max_context=config.get("max_position_embeddings", 2048),
            eos_ids=eos_token_ids(config, tokenizer) if tokenizer is not None else frozenset(),
        )

    @property
    def kv_bytes_per_token(self) -> int:
        return 2 * self.layers * self.kv_heads * self.head_dim * 4


@dataclass
class DecoderOutput:
    logits: np.ndarray | None  # [T, vocab] ("all") or [vocab] ("last"), float32
    cache: list | None  # present.* values: the next call's past
    attentions: list[np.ndarray] | None = None  # per layer [heads, T, total], when asked for


class KVSlots:
    """Pre-allocated KV buffers for the fused graph: per layer key and value [slots, kv_heads, length, head_dim].

    On CPU the buffers are numpy arrays from np.zeros (calloc: pages become resident only when written), and
    `ensure_length` grows them by doubling, copying only the rows in use. On CUDA they are device OrtValues
    allocated once at their full length (device memory is not lazily committed, and Python has no cheap
    device-to-device slice copy)."""

    def __init__(self, config: DecoderConfig, slots: int, length: int, device_type: str = "cpu",
                 dtype=np.float32):
        self.config, self.slots, self.device_type, self.dtype = config, slots, device_type, np.dtype(dtype)
        self.length = 0
        self.buffers: list = []
        self._allocate(length)

    def _shape(self, length: int) -> list[int]:
        return [self.slots, self.config.kv_heads, length, self.config.head_dim]

    def _allocate(self, length: int, keep: dict[int, int] | None = None) -> None:
        if self.device_type == "cpu":
            new = [np.zeros(self._shape(length), dtype=self.dtype) for _ in range(2 * self.config.layers)]
            for old_buf, new_buf in zip(self.buffers, new):
                for slot, used in (keep or {}).items():
                    new_buf[slot, :, :used] = old_buf[slot, :, :used]
        else:
            new = [ort.OrtValue.ortvalue_from_shape_and_type(self._shape(length), self.dtype, self.device_type, 0)
                   for _ in range(2 * self.config.layers)]
        self.buffers, self.length = new, length

    def ensure_length(self, needed: int, in_use: dict[int, int]) -> None:
        """Make every row hold `needed` positions; in_use: slot -> positions filled (copied on growth)."""
        if needed <= self.length:
            return
        if self.device_type != "cpu":
            raise ValueError(f"this request needs {needed} cached tokens; the GPU cache holds {self.length}")
        length = self.length
        while length < needed:
            length *= 2
        self._allocate(min(length, max(needed, self.config.max_context)), in_use)

    def pointer(self, index: int, slot: int = 0) -> int:
        buf = self.buffers[index]
        base = buf.ctypes.data if isinstance(buf, np.ndarray) else buf.data_ptr()
        return base + slot * self.config.kv_heads * self.length * self.config.head_dim * self.dtype.itemsize

    @property
    def nbytes(self) -> int:
        return 2 * self.config.layers * int(np.prod(self._shape(self.length))) * self.dtype.itemsize


class DecoderGraph:
    """An exported decoder's onnxruntime session plus its config; builds every input, runs chosen outputs."""

    def __init__(self, session: ort.InferenceSession, config: DecoderConfig, tokenizer=None, info=None):
        self.session, self.config, self.tokenizer, self.info = session, config, tokenizer, info
        inputs = {i.name: i for i in session.get_inputs()}
        self.has_position_ids = "position_ids" in inputs
        self.kv_dtype = np.float16 if "float16" in inputs["past_key_values.0.key"].type else np.float32
        self.output_names = {o.name for o in session.get_outputs()}
        self.has_attentions = "attentions.0" in self.output_names
        provider = session.get_providers()[0]
        self.device_type = "cuda" if provider == "CUDAExecutionProvider" else "cpu"
        # The fused graph's GroupQueryAttention takes a shared past/present buffer and per-row lengths.
        self.fused = session.get_modelmeta().producer_name == FUSED_PRODUCER
        self._decode_binding = None  # (key, IOBinding) reused while the batch width and KV buffers stay the same

    # --- construction ------------------------------------------------------------------------------
    @classmethod
    def open(cls, model_id: str, variant: str = "default") -> "DecoderGraph":
        """The site's shared session of a registry model (models.runtime decides provider and variant)."""
        from models.paths import model_dir
        from models.runtime import get_session_info
        from models.tokenization import get_tokenizer

        session, info = get_session_info(model_id, variant)
        tokenizer = get_tokenizer(model_id)
        return cls(session, DecoderConfig.from_dir(model_dir(model_id), tokenizer), tokenizer, info)

    @classmethod
    def from_file(cls, path: Path, model_dir: Path | None = None, tokenizer=None) -> "DecoderGraph":
        """A private CPU session on one ONNX file (the quality gate compares two files of one model)."""
        from models.runtime import session_options

        path = Path(path)
        session = ort.InferenceSession(str(path), sess_options=session_options(), providers=["CPUExecutionProvider"])
        return cls(session, DecoderConfig.from_dir(model_dir or path.parent, tokenizer), tokenizer)

    # --- sequence cache --------------------------------------------------------------------------------
    def empty_cache(self) -> list[ort.OrtValue]:
        empty = np.zeros((1, self.config.kv_heads, 0, self.config.head_dim), dtype=self.kv_dtype)
        return [ort.OrtValue.ortvalue_from_numpy(empty, self.device_type, 0) for _ in range(2 * self.config.layers)]

    def _bind_tokens(self, binding, ids: np.ndarray, lengths: np.ndarray, total: int) -> None:
        """input_ids [B, T]; lengths[b] = cached positions of row b before this run; total = mask width."""
        steps = ids.shape[1]
        binding.bind_cpu_input("input_ids", np.ascontiguousarray(ids, dtype=np.int64))
        mask = (np.arange(total)[None, :] < (lengths + steps)[:, None]).astype(np.int64)
        binding.bind_cpu_input("attention_mask", mask)
        if self.has_position_ids:
            binding.bind_cpu_input("position_ids", (lengths[:, None] + np.arange(steps)[None, :]).astype(np.int64))

    def forward(self, ids: Sequence[int], cache: list | None = None, past_len: int = 0, logits: str | None = "last",
                attentions: bool = False, keep_cache: bool = True) -> DecoderOutput:
        """Run one sequence's `ids` after `past_len` cached positions.

        logits: "last" ([vocab]), "all" ([T, vocab]) or None; attentions: also return attentions.* (graphs
        exported with them); keep_cache False skips returning present.* (one-shot analysis runs)."""
        ids = np.asarray(ids, dtype=np.int64).reshape(1, -1)
        cache = self.empty_cache() if cache is None else cache
        binding = self.session.io_binding()
        self._bind_tokens(binding, ids, np.array([past_len]), past_len + ids.shape[1])
        for index, value in enumerate(cache):
            binding.bind_ortvalue_input(self._past_name(index), value)
        wanted = (["logits"] if logits else []) + ([self._present_name(i) for i in range(len(cache))] if keep_cache else [])
        if attentions:
            if not self.has_attentions:
                raise ValueError("this graph was exported without attention outputs")
            wanted += [f"attentions.{i}" for i in range(self.config.layers)]
        for name in wanted:
            # logits are small ([1, T, vocab]) and sampled on the host; the cache stays on the device
            binding.bind_output(name, "cpu" if not name.startswith("present") else self.device_type)
        self.session.run_with_iobinding(binding)
        values = dict(zip(wanted, binding.get_outputs()))
        out_logits = None
        if logits:
            all_logits = values["logits"].numpy()[0].astype(np.float32)
            out_logits = all_logits[-1] if logits == "last" else all_logits
        present = [values[self._present_name(i)] for i in range(len(cache))] if keep_cache else None
        attn = [values[f"attentions.{i}"].numpy()[0] for i in range(self.config.layers)] if attentions else None
        return DecoderOutput(out_logits, present, attn)

    def prefill_chunk(self) -> int:
        return max(16, PREFILL_LOGITS_BUDGET // (4 * self.config.vocab_size))

    def prefill(self, prompt_ids: Sequence[int]) -> tuple[np.ndarray, list]:
        """Last-position logits and the cache after the whole prompt (chunked; see PREFILL_LOGITS_BUDGET)."""
        chunk, cache, done = self.prefill_chunk(), None, 0
        while done < len(prompt_ids):
            out = self.forward(prompt_ids[done:done + chunk], cache, done)
            cache, done = out.cache, min(len(prompt_ids), done + chunk)
        return out.logits, cache

    def greedy(self, prompt_ids: Sequence[int], max_new_tokens: int, ignore_eos: bool = False) -> list[int]:
        """Greedy tokens (argmax) after the prompt; stops after an EOS token unless ignore_eos."""
        logits, cache = self.prefill(prompt_ids)
        tokens: list[int] = []
        while len(tokens) < max_new_tokens:
            token = int(np.argmax(logits))
            tokens.append(token)
            if token in self.config.eos_ids and not ignore_eos:
                break
            if len(tokens) < max_new_tokens:
                out = self.forward([token], cache, len(prompt_ids) + len(tokens) - 1)
                logits, cache = out.logits, out.cache
        return tokens

    def perplexity(self, ids: Sequence[int]) -> float:
        """exp(mean negative log-likelihood) of ids[1:] given the prefix, in one run."""
        logits = self.forward(ids, logits="all", keep_cache=False).logits[:-1].astype(np.float64)
        top = logits.max(-1, keepdims=True)
        log_norm = np.log(np.exp(logits - top).sum(-1)) + top[:, 0]
        nll = log_norm - logits[np.arange(len(ids) - 1), np.asarray(ids[1:])]
        return float(np.exp(nll.mean()))

    def attention(self, ids: Sequence[int]) -> np.ndarray:
        """Attention probabilities [layers, heads, T, T] of one unpadded sequence (no cache kept)."""
        out = self.forward(ids, logits=None, attentions=True, keep_cache=False)
        return np.stack(out.attentions).astype(np.float32)

    # --- slot cache (fused graphs) ---------------------------------------------------------------------
    def new_slots(self, slots: int, length: int) -> KVSlots:
        if not self.fused:
            raise ValueError("a shared KV buffer needs the fused (GroupQueryAttention) graph")
        return KVSlots(self.config, slots, length, self.device_type, self.kv_dtype)

    def _bind_slots(self, binding, kv: KVSlots, first_slot: int, rows: int) -> None:
        shape = [rows, self.config.kv_heads, kv.length, self.config.head_dim]
        element = kv.dtype.type
        for index in range(2 * self.config.layers):
            pointer = kv.pointer(index, first_slot)
            binding.bind_input(self._past_name(index), kv.device_type, 0, element, shape, pointer)
            binding.bind_output(self._present_name(index), kv.device_type, 0, element, shape, pointer)

    def prefill_slot(self, kv: KVSlots, slot: int, ids: Sequence[int], past_len: int = 0) -> np.ndarray:
        """Write ids' keys/values into `slot` after `past_len` positions; returns the last position's logits."""
        ids = np.asarray(ids, dtype=np.int64).reshape(1, -1)
        binding = self.session.io_binding()
        binding.bind_output("logits", "cpu")
        self._bind_tokens(binding, ids, np.array([past_len]), past_len + ids.shape[1])
        self._bind_slots(binding, kv, slot, 1)
        self.session.run_with_iobinding(binding)
        return binding.get_outputs()[0].numpy()[0, -1].astype(np.float32)

    def decode_slots(self, kv: KVSlots, tokens: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """One token for each of rows 0..B-1 (B = len(tokens)); row b has lengths[b] cached positions.
        Returns logits [B, vocab]. Unused rows can ride along with length 0 (they write position 0 only)."""
        rows = len(tokens)
        # Binding 2 x layers KV pointers costs more Python time than a small model's step; they only change
        # when the batch widens or narrows or the buffer grows, so the binding is kept between steps.
        key = (tuple(kv.pointer(i) for i in range(len(kv.buffers))), kv.length, rows)
        if self._decode_binding is None or self._decode_binding[0] != key:
            binding = self.session.io_binding()
            binding.bind_output("logits", "cpu")
            self._bind_slots(binding, kv, 0, rows)
            self._decode_binding = (key, binding)
        binding = self._decode_binding[1]
        self._bind_tokens(binding, np.asarray(tokens, dtype=np.int64).reshape(rows, 1), np.asarray(lengths),
                          int(np.max(lengths)) + 1)
        self.session.run_with_iobinding(binding)
        return binding.get_outputs()[0].numpy()[:, -1].astype(np.float32)

    @staticmethod
    def _past_name(index: int) -> str:
        return f"past_key_values.{index // 2}.{'key' if index % 2 == 0 else 'value'}"

    @staticmethod
    def _present_name(index: int) -> str:
        return f"present.{index // 2}.{'key' if index % 2 == 0 else 'value'}"
