"""Source-language auto-detection: the site's detector (models.languages: script rules and word lists, with
py3langid where the word lists are silent), the same without the library, and maintained
language-identification libraries alone, restricted to the site's 7 languages.

    python -m eval.langid [--json [PATH]]

Test set: eval/data/langid_testset.jsonl, written for this purpose (not taken from the site's examples or
the translation dev set): per language 15 everyday sentences and 6 short inputs (1-3 words), 12
kanji-only Japanese headlines/names (no kana: script alone cannot tell them from Chinese) and 16 mixed-script
sentences labelled with the language of their grammar ("我们用 PyTorch 训练" is zh; "We had 寿司" is en), and
6 Traditional Chinese sentences labelled zh (the site writes Simplified only, but a Traditional Chinese source
is Chinese to the translator; a rule that turns traditional forms into "Japanese" would be wrong there).
Reports accuracy overall, per category and per language, the wrong answers, the resident memory each
detector adds when loaded (RSS growth, measured in a fresh subprocess per detector) and its mean time per
item. Writes eval/results/langid.json (device, date, git commit).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from eval.common import git_commit, write_results

TESTSET_PATH = Path(__file__).resolve().parent / "data" / "langid_testset.jsonl"
RESULTS_PATH = Path(__file__).resolve().parent / "results" / "langid.json"


def load_testset(path: Path = TESTSET_PATH) -> list[dict]:
    from models.languages import SUPPORTED_CODES

    items = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    bad = [item["id"] for item in items if item["lang"] not in SUPPORTED_CODES or not item["text"].strip()]
    if bad:
        raise ValueError(f"test set items with an unsupported language or empty text: {bad}")
    return items


def site() -> Callable[[str], str]:
    """What the Translate tab uses: models.languages (script rules, word lists, py3langid where they are silent)."""
    from models.languages import detect_language

    return detect_language


def word_lists_only() -> Callable[[str], str]:
    """The same rules without the library fallback (the hand-written heuristic as it was, plus the kanji rule)."""
    from models.languages import detect_language_scored

    return lambda text: detect_language_scored(text, use_library=False).code


def lingua_detector() -> Callable[[str], str]:
    from lingua import IsoCode639_1, LanguageDetectorBuilder

    from models.languages import SUPPORTED_CODES

    codes = [getattr(IsoCode639_1, code.upper()) for code in SUPPORTED_CODES]
    detector = LanguageDetectorBuilder.from_iso_codes_639_1(*codes).build()

    def detect(text: str) -> str:
        found = detector.detect_language_of(text)
        return found.iso_code_639_1.name.lower() if found else "none"

    return detect


def py3langid_detector() -> Callable[[str], str]:
    import py3langid

    from models.languages import SUPPORTED_CODES

    py3langid.set_languages(list(SUPPORTED_CODES))
    return lambda text: py3langid.classify(text)[0]


DETECTORS: dict[str, Callable[[], Callable[[str], str]]] = {
    "site": site,
    "word-lists-only": word_lists_only,
    "lingua": lingua_detector,
    "py3langid": py3langid_detector,
}


def evaluate(name: str, items: list[dict]) -> dict:
    """Runs in its own process so that the RSS growth is this detector's alone."""
    import psutil

    process = psutil.Process()
    before = process.memory_info().rss
    start = time.perf_counter()
    detect = DETECTORS[name]()
    for text in ("warm up", "Gute Nacht", "東京駅"):  # every path (word lists, library fallback, script rules)
        detect(text)
    load_s = time.perf_counter() - start
    rss_mb = (process.memory_info().rss - before) / 2**20
    correct: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    wrong = []
    start = time.perf_counter()
    for item in items:
        got = detect(item["text"])
        ok = got == item["lang"]
        for key in ("all", f"category:{item['category']}", f"lang:{item['lang']}"):
            correct[key][0] += ok
            correct[key][1] += 1
        if not ok:
            wrong.append({"id": item["id"], "text": item["text"], "expected": item["lang"], "got": got})
    per_item_ms = (time.perf_counter() - start) / len(items) * 1000
    return {
        "accuracy": {key: round(hit / total, 4) for key, (hit, total) in sorted(correct.items())},
        "correct": {key: f"{hit}/{total}" for key, (hit, total) in sorted(correct.items())},
        "rss_growth_mb": round(rss_mb, 1), "load_s": round(load_s, 3), "ms_per_item": round(per_item_ms, 3),
        "wrong": wrong,
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        print(json.dumps(evaluate(argv[1], load_testset()), ensure_ascii=False))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", nargs="?", const=str(RESULTS_PATH), default=str(RESULTS_PATH))
    args = parser.parse_args(argv)

    from bench.common import environment

    items = load_testset()
    results = {"environment": {**environment("cpu"), "git_commit": git_commit()},
               "testset": TESTSET_PATH.name, "n_items": len(items), "detectors": {}}
    for name in DETECTORS:
        out = subprocess.run([sys.executable, "-m", "eval.langid", "--child", name], capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parent.parent)
        if out.returncode != 0:
            raise SystemExit(f"{name} failed:\n{out.stderr[-3000:]}")
        report = json.loads(out.stdout.strip().splitlines()[-1])
        results["detectors"][name] = report
        accuracy = report["accuracy"]
        print(f"{name:10s} all {accuracy['all']:.3f} · " + " · ".join(
            f"{key.split(':')[1]} {value:.2f}" for key, value in accuracy.items() if key.startswith("category:"))
            + f" · +{report['rss_growth_mb']:.0f} MB · {report['ms_per_item']:.2f} ms/item", flush=True)
    results["best"] = max(results["detectors"], key=lambda name: results["detectors"][name]["accuracy"]["all"])
    write_results(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
