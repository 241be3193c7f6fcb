"""Score the Translate tab's model on a small hand-written dev set with chrF and BLEU (sacrebleu).

    python -m eval.translation [--backend onnx|torch|both] [--limit N] [--direction en-zh ...] [--json [PATH]]

--limit N keeps the first N items of every direction (so each direction is still scored).
--json writes everything (scores, sacrebleu signatures, outputs, errors, timings) to PATH, by default
eval/results/translation_scores.json, which the Translate tab's model card reads.

Metrics, per direction (src-tgt), corpus level:
  * chrF (sacrebleu defaults: character 6-grams, beta 2; works for every language, so it is the headline).
  * BLEU with tokenize="zh" for Chinese targets, "char" for Japanese and Korean targets (the proper
    "ja-mecab"/"ko-mecab" tokenizers need MeCab, which is not installed; character BLEU is not comparable
    with published ja/ko BLEU), "13a" otherwise.
With --backend both it also reports how closely the ONNX path reproduces the PyTorch reference:
per direction |ΔchrF| and the share of byte-identical outputs (greedy decoding should make them equal).

Backends are the lead's functions in models.translate, imported lazily so that scoring (and its tests)
needs neither onnxruntime nor torch. A backend error on one item is recorded, scored as an empty output,
and makes the command exit 1 after the report is written.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path

from models.languages import LANGUAGES

DEVSET_PATH = Path(__file__).resolve().with_name("translation_devset.jsonl")
RESULTS_PATH = Path(__file__).resolve().parent / "results" / "translation_scores.json"
FIELDS = ("id", "src_lang", "tgt_lang", "domain", "source", "reference", "split")
# dev: used to choose prompts (eval/translation_prompts.py); test: never used for choosing, reported as is.
SPLIT_NAMES = ("dev", "test")

Translate = Callable[[str, str, str], str]


def onnx_backend(text: str, source: str, target: str) -> str:
    from models.translate import translate_text

    return translate_text(text, source, target)


def torch_backend(text: str, source: str, target: str) -> str:
    from eval.translation_torch import torch_translate_text

    return torch_translate_text(text, source, target)


BACKENDS: dict[str, Translate] = {"onnx": onnx_backend, "torch": torch_backend}


# ------------------------------------------------------------------------------------------ dev set


def load_devset(path: Path | str = DEVSET_PATH) -> list[dict[str, str]]:
    """The dev set items, checked: all FIELDS present as non-empty strings, supported languages, unique ids."""
    items: list[dict[str, str]] = []
    seen: set[str] = set()
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            item = json.loads(line)
            where = f"{path}:{line_number}"
            for field in FIELDS:
                value = item.get(field)
                if not isinstance(value, str) or not value.strip():
                    raise ValueError(f"{where}: field {field!r} missing or empty")
            if item["split"] not in SPLIT_NAMES:
                raise ValueError(f"{where}: split must be one of {SPLIT_NAMES}, got {item['split']!r}")
            for field in ("src_lang", "tgt_lang"):
                if item[field] not in LANGUAGES:
                    raise ValueError(f"{where}: unsupported {field} {item[field]!r}")
            if item["id"] in seen:
                raise ValueError(f"{where}: duplicate id {item['id']!r}")
            seen.add(item["id"])
            items.append({field: item[field] for field in FIELDS})
    return items


def direction(item: dict[str, str]) -> str:
    return f"{item['src_lang']}-{item['tgt_lang']}"


def select(items: list[dict[str, str]], limit: int | None = None, directions: Sequence[str] = ()) -> list[dict[str, str]]:
    """The first `limit` items of each direction (all when None), only `directions` when given."""
    counts: dict[str, int] = {}
    chosen = []
    for item in items:
        key = direction(item)
        if directions and key not in directions:
            continue
        if limit is not None and counts.get(key, 0) >= limit:
            continue
        counts[key] = counts.get(key, 0) + 1
        chosen.append(item)
    return chosen


# ------------------------------------------------------------------------------------------ scoring


def bleu_tokenizer(target_lang: str) -> str:
    if target_lang == "zh":
        return "zh"
    if target_lang in ("ja", "ko"):
        return "char"  # ja-mecab / ko-mecab need MeCab, not installed here
    return "13a"


def _group(items: Sequence[dict[str, str]], hypotheses: Sequence[str]) -> dict[str, tuple[list[str], list[str]]]:
    """direction -> (hypotheses, references), directions in order of first appearance."""
    if len(items) != len(hypotheses):
        raise ValueError(f"got {len(hypotheses)} hypotheses for {len(items)} items")
    groups: dict[str, tuple[list[str], list[str]]] = {}
    for item, hypothesis in zip(items, hypotheses):
        hyps, refs = groups.setdefault(direction(item), ([], []))
        hyps.append((hypothesis or "").strip())
        refs.append(item["reference"])
    return groups


def score(items: Sequence[dict[str, str]], hypotheses: Sequence[str]) -> dict:
    """Corpus chrF and BLEU per direction: {"directions": {"en-zh": {"n", "chrf", "bleu", ...}}, ...}."""
    from sacrebleu.metrics import BLEU, CHRF

    directions = {}
    for key, (hyps, refs) in _group(items, hypotheses).items():
        tokenize = bleu_tokenizer(key.split("-")[1])
        chrf, bleu = CHRF(), BLEU(tokenize=tokenize)
        directions[key] = {
            "n": len(hyps),
            "chrf": round(chrf.corpus_score(hyps, [refs]).score, 2),
            "bleu": round(bleu.corpus_score(hyps, [refs]).score, 2),
            "bleu_tokenize": tokenize,
            "chrf_signature": str(chrf.get_signature()),
            "bleu_signature": str(bleu.get_signature()),
        }
    return {"directions": directions}


def compare(items: Sequence[dict[str, str]], hypotheses_a: Sequence[str], hypotheses_b: Sequence[str]) -> dict:
    """How far two backends' outputs differ, per direction: chrF of each, |ΔchrF|, share identical."""
    from sacrebleu.metrics import CHRF

    groups_a, groups_b = _group(items, hypotheses_a), _group(items, hypotheses_b)
    directions = {}
    for key, (hyps_a, refs) in groups_a.items():
        hyps_b = groups_b[key][0]
        chrf_a = CHRF().corpus_score(hyps_a, [refs]).score
        chrf_b = CHRF().corpus_score(hyps_b, [refs]).score
        identical = sum(a == b for a, b in zip(hyps_a, hyps_b))
        directions[key] = {
            "n": len(hyps_a),
            "chrf_a": round(chrf_a, 2),
            "chrf_b": round(chrf_b, 2),
            "abs_delta_chrf": round(abs(chrf_a - chrf_b), 2),
            "identical_share": round(identical / len(hyps_a), 4),
        }
    total = len(hypotheses_a)
    identical_all = sum((a or "").strip() == (b or "").strip() for a, b in zip(hypotheses_a, hypotheses_b))
    return {
        "directions": directions,
        "identical_share": round(identical_all / total, 4) if total else 0.0,
        "max_abs_delta_chrf": max((d["abs_delta_chrf"] for d in directions.values()), default=0.0),
    }


# ------------------------------------------------------------------------------------------ running


def run_backend(items: Sequence[dict[str, str]], translate: Translate, name: str = "") -> tuple[list[str], list[dict], float]:
    """(hypotheses, errors, seconds). A failing item becomes "" and an error entry instead of stopping the run."""
    hypotheses: list[str] = []
    errors: list[dict] = []
    started = time.perf_counter()
    for index, item in enumerate(items, 1):
        item_started = time.perf_counter()
        try:
            hypotheses.append(translate(item["source"], item["src_lang"], item["tgt_lang"]))
        except ImportError:
            raise  # a missing backend is not a per-item failure
        except Exception as error:  # noqa: BLE001 - one bad item must not lose a long run; it is reported
            hypotheses.append("")
            errors.append({"id": item["id"], "error": f"{type(error).__name__}: {error}"})
        print(
            f"[{name}] {index}/{len(items)} {item['id']} {time.perf_counter() - item_started:.1f}s",
            file=sys.stderr,
        )
    return hypotheses, errors, time.perf_counter() - started


def _table(results: dict) -> str:
    names = list(results["backends"])
    header = ["direction", "n"] + [f"{name} chrF / BLEU (tok)" for name in names]
    agreement = results.get("agreement")
    if agreement:
        header += ["|ΔchrF|", "identical"]
    rows = [header]
    first = results["backends"][names[0]]["directions"]
    for key, stats in first.items():
        row = [key, str(stats["n"])]
        for name in names:
            d = results["backends"][name]["directions"][key]
            row.append(f"{d['chrf']:6.2f} / {d['bleu']:6.2f} ({d['bleu_tokenize']})")
        if agreement:
            a = agreement["directions"][key]
            row += [f"{a['abs_delta_chrf']:.2f}", f"{a['identical_share']:.0%}"]
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) for row in rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.translation", description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["onnx", "torch", "both"], default="onnx")
    parser.add_argument("--limit", type=int, default=None, help="first N items of every direction")
    parser.add_argument("--direction", action="append", default=[], help="e.g. en-zh; repeatable")
    parser.add_argument("--devset", default=str(DEVSET_PATH))
    parser.add_argument("--json", nargs="?", const=str(RESULTS_PATH), default=None, metavar="PATH")
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")

    import sacrebleu

    items = select(load_devset(args.devset), args.limit, args.direction)
    if not items:
        parser.error("no dev set items selected")
    names = ["onnx", "torch"] if args.backend == "both" else [args.backend]
    results: dict = {
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "devset": Path(args.devset).name,
        "devset_sha256": hashlib.sha256(Path(args.devset).read_bytes()).hexdigest(),
        "n_items": len(items),
        "limit_per_direction": args.limit,
        "sacrebleu_version": sacrebleu.__version__,
        "backends": {},
        "outputs": {},
    }
    failed = False
    for name in names:
        hypotheses, errors, seconds = run_backend(items, BACKENDS[name], name)
        results["backends"][name] = {
            **score(items, hypotheses),
            "seconds": round(seconds, 2),
            "seconds_per_item": round(seconds / len(items), 3),
            "errors": errors,
        }
        results["outputs"][name] = {item["id"]: hyp for item, hyp in zip(items, hypotheses)}
        failed = failed or bool(errors)
    translate_module = sys.modules.get("models.translate")
    results["model"] = getattr(translate_module, "TRANSLATION_MODEL", None)  # registry id, for the model card
    if len(names) == 2:
        outputs = [list(results["outputs"][name].values()) for name in names]
        agreement = compare(items, *outputs)
        agreement["a"], agreement["b"] = names
        results["agreement"] = agreement

    print(_table(results))
    if "agreement" in results:
        print(f"ONNX vs PyTorch: identical outputs {results['agreement']['identical_share']:.0%}, "
              f"max |ΔchrF| {results['agreement']['max_abs_delta_chrf']:.2f}")
    for name in names:
        for error in results["backends"][name]["errors"]:
            print(f"[{name}] error on {error['id']}: {error['error']}", file=sys.stderr)
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
