"""The sentiment classifier as one PyTorch module and as one ONNX graph.

Graph: input_ids, attention_mask [batch, seq] -> MiniLM encoder -> attention-mask-aware mean pooling of
the hidden layers the head was trained on -> head (standardize, linear/MLP) -> softmax `probabilities`
[batch, 3] in the order of `models.sentiment.LABELS`.

Trained here (export/train_sentiment/): the head, in models/weights/sentiment_head.safetensors with its
shape in the file's metadata (so the same loader serves the real encoder and the tiny random BERTs of the
unit tests), and, when the head's metadata names them (`finetuned_layers`), the fine-tuned top encoder
layers in models/weights/sentiment_encoder_top.safetensors, loaded over the packaged encoder's weights.

The exported graph is then rewritten by onnxruntime's transformer optimizer (BERT fusions: Attention,
SkipLayerNormalization, BiasGelu) unless the registry's export settings say `graph_optimizer: none`.
"""
from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoModel, AutoTokenizer

from models.paths import REPO_ROOT
from models.sentiment import LABELS, MAX_TOKENS

HEAD_PATH = REPO_ROOT / "models" / "weights" / "sentiment_head.safetensors"
ENCODER_TOP_PATH = HEAD_PATH.with_name("sentiment_encoder_top.safetensors")
OPSET = 17


class SentimentHead(nn.Module):
    """Standardize the pooled features, then a linear layer (hidden=0) or a one-hidden-layer MLP."""

    def __init__(self, in_dim: int, hidden: int = 0, n_labels: int = len(LABELS), dropout: float = 0.0):
        super().__init__()
        self.in_dim, self.hidden = in_dim, hidden
        self.register_buffer("feature_mean", torch.zeros(in_dim))
        self.register_buffer("feature_scale", torch.ones(in_dim))
        if hidden:
            self.net = nn.Sequential(nn.Dropout(dropout), nn.Linear(in_dim, hidden), nn.GELU(),
                                     nn.Dropout(dropout), nn.Linear(hidden, n_labels))
        else:
            self.net = nn.Sequential(nn.Dropout(dropout), nn.Linear(in_dim, n_labels))

    def forward(self, features: torch.Tensor) -> torch.Tensor:  # logits
        return self.net((features - self.feature_mean) / self.feature_scale)


def save_head(head: SentimentHead, path: Path, pool_layers: list[int], extra: dict | None = None) -> None:
    meta = {
        "labels": json.dumps(list(LABELS)),
        "pool_layers": json.dumps(pool_layers),
        "in_dim": str(head.in_dim),
        "hidden": str(head.hidden),
        "max_tokens": str(MAX_TOKENS),
    }
    meta.update({k: str(v) for k, v in (extra or {}).items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous().float() for k, v in head.state_dict().items()}, str(path), metadata=meta)


def load_head(path: Path = HEAD_PATH) -> tuple[SentimentHead, list[int]]:
    if not Path(path).is_file():
        raise FileNotFoundError(f"no trained sentiment head at {path}; run `python -m export.train_sentiment`")
    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata() or {}
    if json.loads(meta.get("labels", "[]")) != list(LABELS):
        raise ValueError(f"{path} was trained for labels {meta.get('labels')}, expected {list(LABELS)}")
    head = SentimentHead(int(meta["in_dim"]), int(meta["hidden"]))
    head.load_state_dict(load_file(str(path)))
    return head.eval(), json.loads(meta["pool_layers"])


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over real tokens only; padding positions get weight 0 (and an all-pad row cannot divide by 0)."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)


def segment_ids(encoder: nn.Module, input_ids: torch.Tensor) -> dict:
    """BERT's token_type_ids, all zero for one sentence: passing them keeps BERT from slicing a buffer by a
    traced length. MPNet (the training-only teacher, export/train_sentiment/teacher.py) has none."""
    return {"token_type_ids": torch.zeros_like(input_ids)} if encoder.config.model_type == "bert" else {}


class PooledEncoder(nn.Module):
    """Encoder + mean pooling of selected hidden states (0 = embeddings, -1 = last layer), concatenated."""

    def __init__(self, encoder: nn.Module, pool_layers: list[int]):
        super().__init__()
        self.encoder, self.pool_layers = encoder, list(pool_layers)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True,
                           **segment_ids(self.encoder, input_ids))
        states = out.hidden_states
        return torch.cat([masked_mean(states[i], attention_mask) for i in self.pool_layers], dim=-1)


class SentimentClassifier(nn.Module):
    def __init__(self, pooled: PooledEncoder, head: SentimentHead):
        super().__init__()
        self.pooled, self.head = pooled, head

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.head(self.pooled(input_ids, attention_mask)), dim=-1)


def load_encoder(encoder_dir: Path) -> nn.Module:
    # Eager attention: its mask arithmetic ((1 - mask) * min) traces as graph ops, with no SDPA fast path
    # that checks the mask's values in Python.
    return AutoModel.from_pretrained(str(encoder_dir), dtype=torch.float32, attn_implementation="eager").eval()


def default_encoder_dir() -> Path:
    from models.sources import source_path

    return source_path("minilm-l6-v2")


def head_metadata(head_path: Path = HEAD_PATH) -> dict:
    with safe_open(str(head_path), framework="pt") as fh:
        return fh.metadata() or {}


def save_encoder_layers(encoder: nn.Module, layers: list[int], path: Path = ENCODER_TOP_PATH) -> None:
    """The weights of encoder.encoder.layer[i] for i in layers, under the encoder's own state_dict names, in
    float16 (half the repo bytes; the trainer rounds the layers to float16 before it scores them, so the
    scores are those of the stored weights, loaded back into float32)."""
    prefixes = tuple(f"encoder.layer.{i}." for i in layers)
    tensors = {k: v.detach().contiguous().half() for k, v in encoder.state_dict().items() if k.startswith(prefixes)}
    save_file(tensors, str(path), metadata={"layers": json.dumps(layers)})


def apply_finetuned_layers(encoder: nn.Module, head_path: Path = HEAD_PATH) -> nn.Module:
    """Load the fine-tuned top layers the head was trained with (head metadata `finetuned_layers`) over the
    packaged encoder; every tensor of those layers must be in the file, and nothing else."""
    meta = head_metadata(head_path)
    layers = json.loads(meta.get("finetuned_layers", "[]"))
    if not layers:
        return encoder
    path = Path(head_path).with_name(meta.get("encoder_file", ENCODER_TOP_PATH.name))
    if not path.is_file():
        raise FileNotFoundError(f"{head_path} was trained with fine-tuned encoder layers {layers}, but {path} "
                                "is missing; run `python -m export.train_sentiment --finetune`")
    tensors = load_file(str(path))
    prefixes = tuple(f"encoder.layer.{i}." for i in layers)
    expected = {k for k in encoder.state_dict() if k.startswith(prefixes)}
    if set(tensors) != expected:
        raise ValueError(f"{path} does not hold exactly the weights of encoder layers {layers} "
                         f"(missing {sorted(expected - set(tensors))[:3]}, extra {sorted(set(tensors) - expected)[:3]})")
    encoder.load_state_dict(tensors, strict=False)
    return encoder


def build_torch_classifier(encoder_dir: Path | None = None, head_path: Path = HEAD_PATH) -> nn.Module:
    """encoder (+ fine-tuned top layers) + attention-mask-aware mean pooling + trained head -> softmax
    probabilities [batch, 3]."""
    head, pool_layers = load_head(head_path)
    encoder = load_encoder(Path(encoder_dir) if encoder_dir else default_encoder_dir())
    apply_finetuned_layers(encoder, head_path)
    return SentimentClassifier(PooledEncoder(encoder, pool_layers), head).eval()


def graph_optimizer() -> str:
    """'bert' (onnxruntime's transformer fusions) or 'none', from the registry's export settings (part of the
    build key, so changing it rebuilds the export)."""
    from models.registry import SENTIMENT

    return dict(SENTIMENT.export.extra).get("graph_optimizer", "none")


def optimize_graph(path: Path, config) -> dict:
    """Rewrite the graph at `path` with onnxruntime's BERT fusions, in place; returns the fused-op counts.

    opt_level 0: only the pattern fusions are written into the file; the session's own ORT_ENABLE_ALL
    optimizations still run at load time, so the file stays portable across execution providers."""
    from onnxruntime.transformers.optimizer import optimize_model

    optimized = optimize_model(str(path), model_type="bert", num_heads=config.num_attention_heads,
                               hidden_size=config.hidden_size, opt_level=0)
    optimized.save_model_to_file(str(path))
    return {k: v for k, v in optimized.get_fused_operator_statistics().items() if v}


def export_onnx(out_dir: Path, encoder_dir: Path | None = None, head_path: Path = HEAD_PATH) -> None:
    """Write out_dir/model.onnx (one graph, dynamic batch and sequence) and the tokenizer files."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    encoder_dir = Path(encoder_dir) if encoder_dir else default_encoder_dir()
    model = build_torch_classifier(encoder_dir, head_path)
    tokenizer = AutoTokenizer.from_pretrained(str(encoder_dir))
    tokenizer.model_max_length = MAX_TOKENS
    # Trace on a padded batch of two different lengths, so no all-ones-mask shortcut can be taken.
    sample = tokenizer(["a short one", "a somewhat longer example sentence for the trace"],
                       padding=True, return_tensors="pt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings from transformers internals; parity is tested
        torch.onnx.export(
            model,
            (sample["input_ids"], sample["attention_mask"]),
            str(out_dir / "model.onnx"),
            dynamo=False,
            input_names=["input_ids", "attention_mask"],
            output_names=["probabilities"],
            dynamic_axes={"input_ids": {0: "batch", 1: "sequence"},
                          "attention_mask": {0: "batch", 1: "sequence"},
                          "probabilities": {0: "batch"}},
            opset_version=OPSET,
            do_constant_folding=True,
            external_data=False,
        )
    fused = optimize_graph(out_dir / "model.onnx", model.pooled.encoder.config) if graph_optimizer() == "bert" else {}
    tokenizer.save_pretrained(str(out_dir))
    head_meta_path = Path(head_path)
    meta = dict(head_metadata(head_meta_path), graph_fusions=json.dumps(fused))
    (out_dir / "sentiment_head.json").write_text(json.dumps({k: _json_or_str(v) for k, v in meta.items()}, indent=1))
    metrics = head_meta_path.with_name("sentiment_metrics.json")
    if metrics.is_file() and head_meta_path == HEAD_PATH:
        shutil.copy(metrics, out_dir / "sentiment_metrics.json")


def _json_or_str(value: str):
    try:
        return json.loads(value)
    except ValueError:
        return value


PARITY_TEXTS = (
    "Great service, thank you!",
    "My flight was delayed four hours and nobody told us anything, worst airline ever.",
    "ok",
    "The new phone arrived today. Battery life seems fine so far, camera is decent, "
    "but the software update broke my calendar sync and support has not answered in two days.",
    # longer than MAX_TOKENS: exercises the full 128-position range after truncation
    "Honestly the trip started well: friendly gate agents, an early boarding call and a clean cabin. " * 8,
)


def parity_report(out_dir: Path, encoder_dir: Path | None = None, head_path: Path = HEAD_PATH,
                  texts: tuple[str, ...] = PARITY_TEXTS) -> dict:
    """PyTorch vs ONNX Runtime probabilities: each text alone (3 to 128 tokens) and all as one padded batch."""
    import onnxruntime as ort

    out_dir = Path(out_dir)
    model = build_torch_classifier(encoder_dir, head_path)
    tokenizer = AutoTokenizer.from_pretrained(str(out_dir))
    session = ort.InferenceSession(str(out_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    cases = [[t] for t in texts] + [list(texts)]
    worst, lengths, rows = 0.0, set(), []
    for batch in cases:
        enc = tokenizer(batch, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="np")
        ids, mask = enc["input_ids"].astype(np.int64), enc["attention_mask"].astype(np.int64)
        with torch.inference_mode():
            ref = model(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
        got = session.run(["probabilities"], {"input_ids": ids, "attention_mask": mask})[0]
        diff = float(np.abs(ref - got).max())
        worst = max(worst, diff)
        lengths.update(int(n) for n in mask.sum(1))
        rows.append({"batch": len(batch), "padded_length": int(ids.shape[1]), "max_abs_diff": diff})
    return {"max_abs_diff": worst, "token_lengths": sorted(lengths), "cases": rows, "tolerance": 1e-4,
            "ok": worst <= 1e-4}
