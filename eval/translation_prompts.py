"""Compare the translation prompt designs (models.translate.PROMPT_DESIGNS) across ONNX variants, choose one
per direction, and gate the quantized variants on translation quality.

    python -m eval.translation_prompts run --variant fp32 [--design NAME ...] [--split dev|test|all]
                                           [--direction en-zh ...]
    python -m eval.translation_prompts report

`run` translates the selected dev-set items through models.translate (the served code path, with the
design and variant set explicitly) and appends every output to OUTPUTS_PATH, keyed on variant, design,
the design's prompt text, the item and the token cap: a rerun only translates what is missing, so an
interrupted run resumes and `report` is free.

`report` (no model needed) scores what is cached and writes
  * RESULTS_PATH: chrF/BLEU per variant x design x direction x split, which design wins each direction
    on the dev split (CHOICE_VARIANT), and the scores on the test split, which was never used for choosing;
  * GATE_PATH: per quantized variant, whether its chrF (chosen design, dev and test split) is within
    GATE_MAX_DROP of fp32 in both en<->zh directions; models.translate.served_variant() reads it.

Cost control: greedy decoding with the served per-segment budget, capped at 2x the reference's token
count + 8 (an output that long is wrong anyway; the cap only shortens run-away answers, the same for
every design and variant).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from eval.translation import DEVSET_PATH, SPLIT_NAMES, direction, load_devset, score

RESULTS_DIR = Path(__file__).resolve().parent / "results"
OUTPUTS_PATH = RESULTS_DIR / "translation_prompt_outputs.jsonl"
RESULTS_PATH = RESULTS_DIR / "translation_prompts.json"
GATE_PATH = RESULTS_DIR / "translation_variant_gate.json"
GATED_DIRECTIONS = ("en-zh", "zh-en")
GATE_MAX_DROP = 1.0  # chrF points below fp32, per direction and split
GATE_SPLITS = ("dev", "test")
# Designs are chosen on the variant the CPU serves (int8): on this shared 2-core machine fp32 decodes ~3x
# slower, so every design was run in int8 first. The gate then compares the chosen design's int8 and fp32
# scores on both splits (fp32 dev agrees on the winner: see choices and rows in RESULTS_PATH).
CHOICE_VARIANT = "int8"
REFERENCE_VARIANT = "fp32"
SPLITS = SPLIT_NAMES


# ------------------------------------------------------------------------------------------ cache


def design_fingerprint(design: str, source: str, target: str) -> str:
    """The design's prompt text for this direction: editing a design invalidates its cached outputs."""
    from models.translate import messages_for

    return json.dumps(messages_for("{text}", source, target, design), ensure_ascii=False)


def cache_key(variant: str, design: str, item: dict, cap: int) -> str:
    payload = [variant, design, design_fingerprint(design, item["src_lang"], item["tgt_lang"]),
               item["id"], item["source"], cap]
    return hashlib.sha256(json.dumps(payload, ensure_ascii=False).encode()).hexdigest()[:24]


def load_outputs(path: Path = OUTPUTS_PATH) -> dict[str, dict]:
    if not path.is_file():
        return {}
    entries = (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    return {entry["key"]: entry for entry in entries}


def token_cap(item: dict, tokenizer) -> int:
    return 2 * len(tokenizer.encode(item["reference"])) + 8


# ------------------------------------------------------------------------------------------ run


def run(variant: str, designs: Sequence[str], items: Sequence[dict], path: Path = OUTPUTS_PATH) -> int:
    """Translate what is not cached yet; returns how many outputs were made now.

    Item-major order (every design on item 1, then item 2, ...): a run stopped early by the CPU budget still
    leaves every design scored on the same items, which is all `report` compares."""
    from models.translate import get_translator, translate_stream

    tokenizer = get_translator(variant).tokenizer
    cached = load_outputs(path)
    done = 0
    with open(path, "a", encoding="utf-8") as out:
        for index, item in enumerate(items, 1):
            cap = token_cap(item, tokenizer)
            for design in designs:
                key = cache_key(variant, design, item, cap)
                if key in cached:
                    continue
                started = time.perf_counter()
                update = None
                for update in translate_stream(item["source"], item["src_lang"], item["tgt_lang"], design=design,
                                               variant=variant, max_new_tokens=cap):
                    pass
                seconds = time.perf_counter() - started
                entry = {"key": key, "variant": variant, "design": design, "id": item["id"], "cap": cap,
                         "output": update.text, "tokens": update.tokens, "seconds": round(seconds, 3)}
                out.write(json.dumps(entry, ensure_ascii=False) + "\n")
                out.flush()
                done += 1
                print(f"[{variant} {design}] {index}/{len(items)} {item['id']} {update.tokens} tok {seconds:.1f}s",
                      file=sys.stderr)
    return done


def round_robin(items: Sequence[dict]) -> list[dict]:
    """Alternate directions (en-zh 1, zh-en 1, en-zh 2, ...) so a cut-short run covers every direction."""
    queues: dict[str, list[dict]] = {}
    for item in items:
        queues.setdefault(direction(item), []).append(item)
    ordered = []
    for rank in range(max((len(q) for q in queues.values()), default=0)):
        ordered += [queue[rank] for queue in queues.values() if rank < len(queue)]
    return ordered


# ------------------------------------------------------------------------------------------ report


def git_commit() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                             cwd=RESULTS_DIR).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "models/translate.py", "eval/"],
                               capture_output=True, text=True, check=True, cwd=RESULTS_DIR.parent.parent).stdout
        return sha + ("+uncommitted changes" if dirty.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


COVERAGE = 0.8  # a config is compared in a (direction, split) cell if it has >= 80% of the best-covered config's items


def collect(items: Sequence[dict], outputs: dict[str, dict], tokenizer) -> tuple[list[dict], list[dict]]:
    """(rows, incomplete). Per direction and split, every (variant, design) run there is scored on the SAME
    items: those all of them have translated (runs are item-major, so a budget cut leaves them aligned).
    Outputs whose prompt or item changed since are stale and ignored; configs far behind the others are
    listed in `incomplete` instead of shrinking everyone's item set."""
    fresh: dict[tuple[str, str], dict[str, dict]] = {}
    by_id = {item["id"]: item for item in items}
    for entry in outputs.values():
        item = by_id.get(entry["id"])
        if item and entry["key"] == cache_key(entry["variant"], entry["design"], item, token_cap(item, tokenizer)):
            fresh.setdefault((entry["variant"], entry["design"]), {})[entry["id"]] = entry
    rows, incomplete = [], []
    for key in dict.fromkeys(direction(item) for item in items):
        for split in SPLITS:
            cell = [item["id"] for item in items if direction(item) == key and item["split"] == split]
            have = {config: [i for i in cell if i in done] for config, done in sorted(fresh.items())}
            have = {config: ids for config, ids in have.items() if ids}
            if not have:
                continue
            most = max(len(ids) for ids in have.values())
            compared = {config: ids for config, ids in have.items() if len(ids) >= COVERAGE * most}
            incomplete += [{"variant": v, "design": d, "direction": key, "split": split, "n": len(ids)}
                           for (v, d), ids in have.items() if (v, d) not in compared]
            common = [i for i in cell if all(i in fresh[config] for config in compared)]
            for (variant, design) in compared:
                rows.append(_row(variant, design, key, split, [by_id[i] for i in common],
                                 [fresh[(variant, design)][i] for i in common], len(cell)))
    return rows, incomplete


def _row(variant: str, design: str, key: str, split: str, subset: list[dict], entries: list[dict], of: int) -> dict:
    scores = score(subset, [entry["output"] for entry in entries])["directions"][key]
    tokens = sum(entry["tokens"] for entry in entries)
    seconds = sum(entry["seconds"] for entry in entries)
    return {"variant": variant, "design": design, "direction": key, "split": split, "n": scores["n"],
            "of": of, "chrf": scores["chrf"], "bleu": scores["bleu"], "bleu_tokenize": scores["bleu_tokenize"],
            "tokens": tokens, "seconds": round(seconds, 1), "tok_s": round(tokens / seconds, 1) if seconds else None}


def find(rows: Sequence[dict], **match) -> dict | None:
    return next((row for row in rows if all(row[k] == v for k, v in match.items())), None)


def choose(rows: Sequence[dict]) -> dict[str, dict]:
    """Per direction: the design with the best CHOICE_VARIANT dev-split chrF (ties: the first in PROMPT_DESIGNS),
    with REFERENCE_VARIANT's dev ranking beside it where every design was run in it too (does fp32 agree?)."""
    from models.translate import PROMPT_DESIGNS

    order = list(PROMPT_DESIGNS)

    def dev_scores(key: str, variant: str) -> dict[str, float]:
        dev = {row["design"]: row["chrf"] for row in rows
               if row["direction"] == key and row["split"] == "dev" and row["variant"] == variant}
        return dict(sorted(dev.items(), key=lambda kv: (-kv[1], order.index(kv[0]) if kv[0] in order else 99)))

    choices = {}
    for key in dict.fromkeys(row["direction"] for row in rows):
        dev = dev_scores(key, CHOICE_VARIANT)
        if not dev:
            continue
        best, *rest = dev
        n = next(row["n"] for row in rows if row["direction"] == key and row["split"] == "dev"
                 and row["variant"] == CHOICE_VARIANT)
        choices[key] = {"design": best, "n": n, "dev_chrf": dev,
                        "margin_over_next": round(dev[best] - (dev[rest[0]] if rest else dev[best]), 2)}
        reference = dev_scores(key, REFERENCE_VARIANT)
        if set(reference) == set(dev):
            choices[key] |= {f"{REFERENCE_VARIANT}_dev_chrf": reference,
                             f"{REFERENCE_VARIANT}_agrees": next(iter(reference)) == best}
    return choices


def gate(rows: Sequence[dict], choices: dict[str, dict]) -> dict[str, dict]:
    """Per quantized variant: chrF with each direction's chosen design vs fp32, on the dev split (where the
    design was chosen) and on the test split (never used for choosing); a variant passes only if neither
    split drops more than GATE_MAX_DROP in any gated direction."""
    variants = sorted({row["variant"] for row in rows} - {REFERENCE_VARIANT})
    verdicts = {}
    for variant in variants:
        directions, passed, missing = {}, True, []
        for key in GATED_DIRECTIONS:
            design = choices.get(key, {}).get("design")
            directions[key] = {"design": design}
            for split in GATE_SPLITS:
                ref = find(rows, variant=REFERENCE_VARIANT, design=design, direction=key, split=split)
                got = find(rows, variant=variant, design=design, direction=key, split=split)
                if not (design and ref and got):
                    missing.append(f"{key} {split}")
                    continue
                delta = round(got["chrf"] - ref["chrf"], 2)
                directions[key][split] = {"n": got["n"], "fp32_chrf": ref["chrf"], "chrf": got["chrf"],
                                          "delta": delta, "tok_s": got["tok_s"], "fp32_tok_s": ref["tok_s"]}
                passed = passed and delta >= -GATE_MAX_DROP
        if missing:
            verdicts[variant] = {"passed": False, "directions": directions,
                                 "summary": f"not measured with the chosen design for {', '.join(missing)}"}
            continue
        deltas = ", ".join(f"{key} " + " ".join(f"{split} {d[split]['delta']:+.2f}" for split in GATE_SPLITS)
                           for key, d in directions.items())
        verdicts[variant] = {"passed": passed, "directions": directions,
                             "summary": f"chrF vs fp32 with the chosen prompt: {deltas} "
                                        f"(limit -{GATE_MAX_DROP:.1f} in each)"}
    return verdicts


def bench_speeds(results_dir: Path = Path(__file__).resolve().parent.parent / "bench" / "results") -> dict:
    """Median decode tok/s per variant from the newest committed translate benchmark on CPU (what a gate
    decision costs or saves in speed), with the file it came from."""
    files = sorted(results_dir.glob("translate-cpu-*.json"))
    if not files:
        return {}
    doc = json.loads(files[-1].read_text(encoding="utf-8"))
    speeds = {row["variant"]: round(row["tok_s"], 1) for row in doc.get("rows", [])
              if row.get("runtime") == "onnxruntime" and row.get("tok_s")}
    return {"file": f"bench/results/{files[-1].name}", "date": doc.get("environment", {}).get("date"),
            "tok_s": speeds}


def speed_cost(verdicts: dict[str, dict], speeds: dict) -> None:
    """Adds to each verdict what serving it instead of fp32 means for decode speed (in place)."""
    tok_s = speeds.get("tok_s", {})
    for variant, verdict in verdicts.items():
        if variant in tok_s and "fp32" in tok_s:
            verdict["speed"] = {"tok_s": tok_s[variant], "fp32_tok_s": tok_s["fp32"], "source": speeds["file"]}
            if not verdict["passed"]:
                verdict["summary"] += (f"; serving fp32 instead decodes at {tok_s['fp32']} tok/s vs {tok_s[variant]} "
                                       f"for {variant} ({speeds['file']})")


def report(devset: Path = DEVSET_PATH, outputs_path: Path = OUTPUTS_PATH, results_path: Path = RESULTS_PATH,
           gate_path: Path = GATE_PATH, note: str = "") -> dict:
    import sacrebleu

    from bench.common import environment
    from models.tokenization import get_tokenizer
    from models.translate import PROMPT_DESIGNS, TRANSLATION_MODEL

    items = load_devset(devset)
    rows, incomplete = collect(items, load_outputs(outputs_path), get_tokenizer(TRANSLATION_MODEL))
    choices = choose(rows)
    verdicts = gate(rows, choices)
    speed_cost(verdicts, bench_speeds())
    meta = {
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "environment": environment("cpu"),
        "model": TRANSLATION_MODEL,
        "devset": devset.name,
        "devset_sha256": hashlib.sha256(devset.read_bytes()).hexdigest(),
        "sacrebleu_version": sacrebleu.__version__,
        "token_cap": "per item: min(served per-segment budget, 2 x reference tokens + 8)",
        "coverage": "n = items scored in a cell (the same items for every config in it), of = items in the split; "
                    "n < of where the CPU budget ran out first",
        "note": note,
    }
    results = {**meta,
               "designs": {name: design.description for name, design in PROMPT_DESIGNS.items()},
               "choice_rule": f"per direction, the design with the best {CHOICE_VARIANT} chrF on the dev split",
               "choices": choices, "rows": rows, "incomplete": incomplete}
    gate_doc = {**meta, "rule": f"a quantized variant is served for translation only if its chrF with the chosen "
                                f"design is at most {GATE_MAX_DROP} below fp32 in both "
                                f"{' and '.join(GATED_DIRECTIONS)}, on the dev and on the test split",
                "variants": verdicts}
    for path, doc in ((results_path, results), (gate_path, gate_doc)):
        path.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return results | {"gate": verdicts}


def _print(results: dict) -> None:
    for row in results["rows"]:
        print(f"{row['variant']:5} {row['design']:10} {row['direction']} {row['split']:4} n={row['n']:3} "
              f"chrF {row['chrf']:6.2f} BLEU {row['bleu']:6.2f} {row['tok_s'] or 0:5.1f} tok/s")
    for key, choice in results["choices"].items():
        print(f"choice {key}: {choice['design']} (dev chrF {choice['dev_chrf']})")
    for variant, verdict in results["gate"].items():
        print(f"gate {variant}: {'PASS' if verdict['passed'] else 'FAIL'} - {verdict['summary']}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.translation_prompts", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run", help="translate the selected items (cached)")
    run_parser.add_argument("--variant", required=True, help="ONNX variant: fp32, int8, int4")
    run_parser.add_argument("--design", action="append", default=[], help="repeatable; default: all designs")
    run_parser.add_argument("--split", choices=[*SPLITS, "all"], default="all")
    run_parser.add_argument("--direction", action="append", default=[], help="e.g. en-zh; repeatable")
    report_parser = sub.add_parser("report", help="score the cached outputs, write the results and gate files")
    report_parser.add_argument("--note", default="", help="how the run went (budget, load), kept in the results")
    args = parser.parse_args(argv)
    if args.command == "report":
        _print(report(note=args.note))
        return 0
    from models.translate import PROMPT_DESIGNS

    unknown = [name for name in args.design if name not in PROMPT_DESIGNS]
    if unknown:
        parser.error(f"unknown design(s) {unknown}; known: {', '.join(PROMPT_DESIGNS)}")
    items = [item for item in load_devset()
             if (args.split == "all" or item["split"] == args.split)
             and (not args.direction or direction(item) in args.direction)]
    if not items:
        parser.error("no dev set items selected")
    translated = run(args.variant, args.design or list(PROMPT_DESIGNS), round_robin(items))
    print(f"translated {translated} new item(s); cached outputs in {OUTPUTS_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
