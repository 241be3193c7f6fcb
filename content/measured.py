"""Numbers this project measured, read from the committed results files when a guide page is rendered.

A page never copies a measured number; it writes a placeholder that names a metric::

    SmolLM2 ran at {{measured:generate.cpu.int4.tok_s}} tokens/s

and ``fill(page_text)`` replaces it with the value from the newest results file of that kind, followed by a
note marker; ``sources_note(...)`` lists, per file, the device and date a reader needs to judge the number.
An unknown key, a missing file or a missing field raises ValueError: a page never renders a blank.

Two tables, in one place, are all there is to re-point:
- ``SOURCES``: a kind of results file -> where such files live (a glob) and which of them count;
- ``METRICS``: a placeholder key -> (source kind, field path, format). Re-point a key by editing its line.

Field paths are dotted names; ``rows[runtime=onnxruntime,variant=int4]`` picks the first list element with
those values (a benchmark that adds a llama.cpp row with its own int4 variant does not change the key).
New results files are picked up without code changes: the newest file of a kind (by the date recorded in
the file, then by file name) that contains the field wins, so a new benchmark with extra fields or rows
changes the pages, and one that lacks a field falls back to the newest file that has it (the note names it).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]

PLACEHOLDER = re.compile(r"\{\{measured:([a-z0-9_.\-]+)\}\}")
_ANY_PLACEHOLDER = re.compile(r"\{\{[^}]*\}\}")  # a misspelt one ({{measure:x}}) must fail too, not show as text
_SELECTOR = re.compile(r"^([A-Za-z0-9_\-]+)\[([^\]]+)\]$")  # rows[runtime=onnxruntime,variant=int4]


def _streams(doc: dict) -> int:
    streams = (doc.get("settings") or {}).get("streams") or 0
    return int(streams) if isinstance(streams, (int, float)) else 0


@dataclass(frozen=True)
class Source:
    pattern: str  # glob relative to the repository root
    describe: str  # what was measured, in a few words, for the page's source notes (English)
    describe_zh: str  # the same in Chinese
    accept: Callable[[dict], bool] = lambda doc: True  # which files of the glob are of this kind


SOURCES: dict[str, Source] = {
    "bench-generate-cpu": Source("bench/results/generate-cpu-*.json", "SmolLM2-135M decode, one stream",
                                 "SmolLM2-135M 解码，单路", lambda doc: _streams(doc) <= 1),
    "bench-generate-cpu-streams": Source("bench/results/generate-cpu-*.json", "SmolLM2-135M decode, concurrent streams",
                                         "SmolLM2-135M 解码，多路并发", lambda doc: _streams(doc) > 1),
    "bench-translate-cpu": Source("bench/results/translate-cpu-*.json", "Qwen2.5-0.5B translation decode",
                                  "Qwen2.5-0.5B 翻译解码", lambda doc: _streams(doc) <= 1),
    "bench-classify-cpu": Source("bench/results/classify-cpu-*.json", "sentiment classifier latency",
                                 "情感分类延迟"),
    # the pages say "on an H100": point this at another GPU's files only together with that wording
    "gpu-h100": Source("scripts/gpu/results-h100-*.json", "GPU session (scripts/gpu/measure.py)",
                       "GPU 测试（scripts/gpu/measure.py）"),
    "sentiment": Source("models/weights/sentiment_metrics.json", "sentiment head, held-out test split",
                        "情感分类头，留出测试集"),
    "translation-eval": Source("eval/results/translation_scores*.json", "translation dev set, served model",
                               "翻译开发集，线上模型"),
}

# benchmark rows (bench/common.py Report.rows), picked by runtime and exported variant
_INT4, _INT8 = "rows[runtime=onnxruntime,variant=int4]", "rows[runtime=onnxruntime,variant=int8]"
_FP32, _TORCH = "rows[runtime=onnxruntime,variant=fp32]", "rows[runtime=pytorch]"

# key -> (source kind, field path, format). Formats: a str.format spec, "int" (thousands separators),
# or "prefix" (the count in "22/64": tokens that agree before the first mismatch).
METRICS: dict[str, tuple[str, str, str]] = {
    # 2-core CPU, SmolLM2-135M greedy decode, batch 1 (bench/generate.py): median and best round
    "generate.cpu.int4.tok_s": ("bench-generate-cpu", _INT4 + ".tok_s", "{:.1f}"),
    "generate.cpu.int4.tok_s_best": ("bench-generate-cpu", _INT4 + ".tok_s_best", "{:.0f}"),
    "generate.cpu.int4.ttft_ms": ("bench-generate-cpu", _INT4 + ".ttft_ms", "{:.0f}"),
    "generate.cpu.int4.same_tokens": ("bench-generate-cpu", _INT4 + ".same_tokens", "prefix"),
    "generate.cpu.int4.x_torch": ("bench-generate-cpu", _INT4 + ".x_torch", "{:.1f}"),
    "generate.cpu.fp32.tok_s": ("bench-generate-cpu", _FP32 + ".tok_s", "{:.1f}"),
    # same_tokens: how many greedy tokens, of all, agree with ONNX Runtime fp32 before the first mismatch
    "generate.cpu.torch.same_tokens": ("bench-generate-cpu", _TORCH + ".same_tokens", "prefix"),
    "generate.cpu.torch.tok_s": ("bench-generate-cpu", _TORCH + ".tok_s", "{:.1f}"),
    "generate.cpu.torch.tok_s_best": ("bench-generate-cpu", _TORCH + ".tok_s_best", "{:.0f}"),
    "generate.cpu.tokens": ("bench-generate-cpu", "settings.tokens", "int"),
    "generate.cpu.rounds": ("bench-generate-cpu", "settings.rounds", "int"),
    # 2-core CPU, Qwen2.5-Coder-0.5B translation decode
    "translate.cpu.int8.tok_s": ("bench-translate-cpu", _INT8 + ".tok_s", "{:.1f}"),
    "translate.cpu.int8.tok_s_best": ("bench-translate-cpu", _INT8 + ".tok_s_best", "{:.0f}"),
    "translate.cpu.torch.tok_s": ("bench-translate-cpu", _TORCH + ".tok_s", "{:.1f}"),
    # 2-core CPU, sentiment classifier, one sentence
    "classify.cpu.fp32.p50_ms": ("bench-classify-cpu", _FP32 + ".p50_ms", "{:.1f}"),
    "classify.cpu.torch.p50_ms": ("bench-classify-cpu", _TORCH + ".p50_ms", "{:.1f}"),
    # H100 session: SmolLM2 batch 1, 16 streams; MiniLM batch 1 at 32 tokens
    "gpu.smollm2.ort_fp32.tok_s": ("gpu-h100", "sections.ort_smollm2.fp32.tok_s", "{:.1f}"),
    "gpu.smollm2.ort_fp32.ttft_ms": ("gpu-h100", "sections.ort_smollm2.fp32.ttft_ms", "{:.1f}"),
    "gpu.smollm2.torch.tok_s": ("gpu-h100", "sections.pytorch_smollm2.tok_s", "{:.1f}"),
    "gpu.smollm2.torch.ttft_ms": ("gpu-h100", "sections.pytorch_smollm2.ttft_ms", "{:.0f}"),
    "gpu.smollm2.streams.tok_s": ("gpu-h100", "sections.ort_smollm2_streams.aggregate_tok_s", "{:,.0f}"),
    "gpu.minilm.torch_fp16.b1_ms": ("gpu-h100", "sections.minilm.pytorch_fp16.b1_L32_ms_p50", "{:.2f}"),
    "gpu.minilm.served_fp32.b1_ms": ("gpu-h100", "sections.minilm.served fp32 (+attentions).b1_L32_ms_p50",
                                     "{:.2f}"),
    "gpu.minilm.fused_fp16.b1_ms": ("gpu-h100", "sections.minilm.optimized fp16 (fused, no attentions).b1_L32_ms_p50",
                                    "{:.2f}"),
    # the served sentiment head (3 classes), held-out test split
    "sentiment.test.accuracy": ("sentiment", "test.accuracy", "{:.3f}"),
    "sentiment.test.macro_f1": ("sentiment", "test.macro_f1", "{:.3f}"),
    "sentiment.test.n": ("sentiment", "split_sizes.test", "int"),
    "sentiment.test.binary_accuracy": ("sentiment", "test.binary_accuracy_pos_vs_neg", "{:.3f}"),
    "sentiment.test.positive_recall": ("sentiment", "test.per_class.positive.recall", "{:.2f}"),
    "sentiment.corpus.rows": ("sentiment", "corpus.rows", "int"),
    # translation dev set, the served model (chrF / BLEU per direction)
    "translation.en-zh.chrf": ("translation-eval", "backends.onnx.directions.en-zh.chrf", "{:.1f}"),
    "translation.zh-en.chrf": ("translation-eval", "backends.onnx.directions.zh-en.chrf", "{:.1f}"),
    "translation.en-zh.n": ("translation-eval", "backends.onnx.directions.en-zh.n", "int"),
}


@dataclass(frozen=True)
class Measurement:
    key: str
    value: Any
    text: str  # the value as the page shows it
    path: Path  # the results file it came from
    device: str
    date: str  # YYYY-MM-DD
    what: str
    what_zh: str
    commit: str = ""  # the git commit the file records, if it records one


def _date_of(doc: dict) -> str:
    """The measurement date a results file records (several schemas), as YYYY-MM-DD; '' if none."""
    env = doc.get("environment") or {}
    device = (doc.get("sections") or {}).get("device") or {}
    for value in (env.get("date"), device.get("date"), doc.get("date"), doc.get("created_utc")):
        if isinstance(value, str) and re.match(r"\d{4}-\d\d-\d\d", value):
            return value[:10]
    return ""


def _device_of(doc: dict) -> str:
    env = doc.get("environment") or {}
    device = (doc.get("sections") or {}).get("device") or {}
    return str(env.get("device_name") or env.get("device") or device.get("gpu") or doc.get("device") or "")


def _step(node: Any, name: str) -> tuple[bool, Any]:
    """One path step: a dict key, or ``list[field=value,...]`` (the first element with all those values)."""
    selector = _SELECTOR.match(name)
    if selector and isinstance(node, dict) and isinstance(node.get(selector.group(1)), list):
        want = dict(pair.split("=", 1) for pair in selector.group(2).split(",") if "=" in pair)
        rows = [row for row in node[selector.group(1)]
                if isinstance(row, dict) and all(str(row.get(k)) == v for k, v in want.items())]
        return (True, rows[0]) if rows and want else (False, None)
    if isinstance(node, dict) and name in node:
        return True, node[name]
    return False, None


def _commit_of(doc: dict) -> str:
    env = doc.get("environment") or {}
    for value in (env.get("git_commit"), env.get("commit"), doc.get("git_commit"), doc.get("commit")):
        if isinstance(value, str) and value.strip():
            return value.strip()[:12]
    return ""


def _lookup(doc: Any, path: str) -> Any:
    """Follow a dotted path; raises KeyError when a step is missing or the value is null.

    A step takes the longest run of dotted parts that names a key, so a key that itself contains a dot
    (a version, a file name) still resolves.
    """
    parts, node, i = path.split("."), doc, 0
    while i < len(parts):
        for j in range(len(parts), i, -1):
            ok, child = _step(node, ".".join(parts[i:j]))
            if ok:
                node, i = child, j
                break
        else:
            raise KeyError(".".join(parts[i:]))
    if node is None:
        raise KeyError(path)
    return node


def _format(value: Any, fmt: str) -> str:
    if fmt == "int":
        return f"{int(value):,}"
    if fmt == "prefix":
        count, _, _total = str(value).partition("/")
        return f"{int(count):,}"
    return fmt.format(value)


@lru_cache(maxsize=64)
def _load(path: Path, mtime_ns: int) -> Any:
    """Parsed results file; cached per modification time (a page render resolves dozens of keys)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"results file {path} is not readable JSON: {exc}") from exc


def _candidates(source: Source, root: Path) -> list[tuple[Path, dict]]:
    """Files of one kind, newest first (recorded date, then file name, whose stamps sort by time)."""
    found = []
    for path in root.glob(source.pattern):
        doc = _load(path, path.stat().st_mtime_ns)
        if isinstance(doc, dict) and source.accept(doc):
            found.append((path, doc))
    return sorted(found, key=lambda item: (_date_of(item[1]), item[0].name), reverse=True)


def resolve(key: str, root: Path = REPO) -> Measurement:
    """The value of one metric from the newest results file that has it; ValueError names what is missing."""
    if key not in METRICS:
        raise ValueError(f"unknown measured key {key!r}; known keys are listed in content/measured.py METRICS")
    kind, path, fmt = METRICS[key]
    source = SOURCES[kind]
    files = _candidates(source, root)
    if not files:
        raise ValueError(f"measured key {key!r}: no results file matches {source.pattern}")
    for file, doc in files:
        try:
            value = _lookup(doc, path)
        except KeyError:
            continue
        return Measurement(key, value, _format(value, fmt), file, _device_of(doc), _date_of(doc), source.describe,
                           source.describe_zh, _commit_of(doc))
    raise ValueError(f"measured key {key!r}: field {path!r} is in none of {[str(f) for f, _ in files]}")


def keys_in(text: str) -> list[str]:
    """Placeholder keys in order of appearance; a malformed {{...}} raises (it would show as raw text)."""
    for raw in _ANY_PLACEHOLDER.findall(text):
        if not PLACEHOLDER.fullmatch(raw):
            raise ValueError(f"malformed placeholder {raw!r}; write {{{{measured:<key>}}}}")
    return PLACEHOLDER.findall(text)


def fill(text: str, marker: Callable[[Measurement, int], str] = lambda m, n: "",
         root: Path = REPO) -> tuple[str, list[Measurement]]:
    """Replace every placeholder with its value; the measurements used, in order.

    ``marker(measurement, note number)`` is appended after the first value from each file on a line (a
    paragraph, list item or table row), so a sentence quoting five numbers from one run carries one note.
    """
    keys_in(text)  # validates the syntax first
    used: list[Measurement] = []
    files: list[Path] = []
    marked: set[tuple[int, Path]] = set()

    def replace(match: re.Match) -> str:
        measurement = resolve(match.group(1), root)
        used.append(measurement)
        if measurement.path not in files:
            files.append(measurement.path)
        place = (text.count("\n", 0, match.start()), measurement.path)
        if place in marked:
            return measurement.text
        marked.add(place)
        return measurement.text + marker(measurement, files.index(measurement.path) + 1)

    return PLACEHOLDER.sub(replace, text), used


def sources_by_file(used: list[Measurement]) -> list[Measurement]:
    """One measurement per results file, in first-use order (for the page's source notes)."""
    seen: dict[Path, Measurement] = {}
    for measurement in used:
        seen.setdefault(measurement.path, measurement)
    return list(seen.values())


def relative(path: Path, root: Path = REPO) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()
