"""python -m export.train_sentiment [--explore] [--resplit] [--finetune [--epochs N] [--frozen K] [--lr-encoder X]
[--lr-head X] [--[no-]warm-head] [--[no-]confidence-weighted] [--distill W [--distill-temperature T]]
[--ema DECAY] [--checks N] [--seed N] [--teacher HEAD ...] [--augment N] [--keep DIR]] [--ensemble HEAD HEAD ...]
[--train-teacher DIR]: see the package docstring."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from export import train_sentiment
from export.train_sentiment import log
from export.train_sentiment.data import FRACTIONS, load_corpus, load_or_make_split
from export.train_sentiment.finetune import FINETUNE_CONFIG
from export.train_sentiment.pipeline import run_ensemble, run_finetune, run_frozen
from export.train_sentiment.teacher import run_teacher


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m export.train_sentiment", description=train_sentiment.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--explore", action="store_true", help="compare head variants on validation first")
    parser.add_argument("--resplit", action="store_true", help="recompute the split file from the seed")
    parser.add_argument("--finetune", action="store_true",
                        help="fine-tune the top encoder layers with the head (the served model; also records "
                             "the frozen baseline and calibrated offsets in eval/results/sentiment_experiments.json)")
    parser.add_argument("--epochs", type=float, help="with --finetune: passes over the training split (default "
                        f"{FINETUNE_CONFIG['epochs']}; a small fraction is a quick end-to-end trial)")
    parser.add_argument("--frozen", type=int, help="with --finetune: encoder layers kept frozen below the tuned ones "
                        f"(default {FINETUNE_CONFIG['frozen']}; 0 tunes all six transformer layers)")
    parser.add_argument("--lr-encoder", type=float, help="with --finetune: the tuned layers' peak learning rate "
                        f"(default {FINETUNE_CONFIG['lr_encoder']:g})")
    parser.add_argument("--lr-head", type=float, help="with --finetune: the head's peak learning rate "
                        f"(default {FINETUNE_CONFIG['lr_head']:g})")
    parser.add_argument("--warm-head", action=argparse.BooleanOptionalAction, default=None,
                        help="with --finetune: start from the frozen run's trained head instead of a fresh one "
                        f"(default {FINETUNE_CONFIG['warm_head']})")
    parser.add_argument("--confidence-weighted", action=argparse.BooleanOptionalAction, default=None,
                        help="with --finetune: weight each training example's loss by the corpus's label "
                        f"confidence (default {FINETUNE_CONFIG['confidence_weighted']})")
    parser.add_argument("--distill", type=float, help="with --finetune: weight (0-1) of a distillation term whose "
                        "teacher is the classifier stored in models/weights when the run starts "
                        f"(default {FINETUNE_CONFIG['distill']:g}: hard labels only)")
    parser.add_argument("--distill-temperature", type=float, help="with --distill: the softmax temperature of "
                        f"teacher and student in that term (default {FINETUNE_CONFIG['distill_temperature']:g})")
    parser.add_argument("--ema", type=float, help="with --finetune: also keep an exponential moving average of the "
                        "weights at this decay (e.g. 0.998) and serve it if better on validation "
                        f"(default {FINETUNE_CONFIG['ema']:g}: off)")
    parser.add_argument("--checks", type=int, help="with --finetune: validation checks over the run, each a "
                        f"checkpoint candidate (default {FINETUNE_CONFIG['checks']})")
    parser.add_argument("--seed", type=int, help="with --finetune: the seed of the head's initialization, dropout "
                        f"and batch order (default {FINETUNE_CONFIG['seed']}; the split keeps its own)")
    parser.add_argument("--augment", type=int, metavar="N",
                        help="with --distill: add up to N noisy variants of each training text (words deleted and "
                        "swapped), each learning only the teacher's distribution on it "
                        f"(default {FINETUNE_CONFIG['augment']})")
    parser.add_argument("--teacher", type=Path, action="append", metavar="HEAD",
                        help="with --distill: a stored classifier's head file (its fine-tuned layers beside it); "
                        "repeat for an ensemble teacher (default: the served model)")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="with --finetune: serve nothing; write the best fine-tuned candidate (head + layers) "
                        "to DIR, e.g. as an ensemble member")
    parser.add_argument("--train-teacher", type=Path, metavar="DIR",
                        help="fine-tune the top layers of all-mpnet-base-v2 (requirements-teacher.txt) with a head "
                        "and write it, with its logits for every split text, to DIR: a teacher for --distill W "
                        "--teacher DIR/sentiment_head.safetensors; serves nothing. The --finetune flags set its "
                        "recipe (default: export.train_sentiment.teacher.TEACHER_CONFIG)")
    parser.add_argument("--ensemble", type=Path, nargs="+", metavar="HEAD",
                        help="score and record the ensemble of these stored classifiers (mean offset-free "
                        "log-probabilities, offsets calibrated on validation); serves nothing")
    args = parser.parse_args(argv)
    if args.teacher and not args.distill:
        parser.error("--teacher needs --distill W")
    if args.augment and not args.distill:
        parser.error("--augment needs --distill W: the variants are labelled by the teacher")
    if args.augment is not None and args.augment < 0:
        parser.error("--augment is a number of variants per text (0 or more)")
    if args.keep and not args.finetune:
        parser.error("--keep needs --finetune")
    if args.ensemble and args.finetune:
        parser.error("--ensemble scores stored models; it does not combine with --finetune")
    if args.train_teacher and (args.finetune or args.ensemble or args.keep or args.distill):
        parser.error("--train-teacher is a run of its own (no --finetune, --ensemble, --keep or --distill)")
    for path in [*(args.teacher or []), *(args.ensemble or [])]:
        if not path.is_file():
            parser.error(f"no stored classifier head at {path}")
    if args.distill is not None and not 0 <= args.distill <= 1:
        parser.error("--distill is a weight between 0 and 1")
    if args.ema is not None and not 0 <= args.ema < 1:
        parser.error("--ema is a decay in [0, 1) (0 turns it off)")
    if args.checks is not None and args.checks < 1:
        parser.error("--checks must be at least 1")
    torch.set_num_threads(2)  # the build machine has 2 cores shared with the site
    t0 = time.perf_counter()

    rows = load_corpus()
    split = load_or_make_split(rows, args.resplit)
    by_row = {r["row"]: r for r in rows}
    names = list(FRACTIONS)
    log(f"corpus: {len(rows):,} rows; dropped {split['dropped']['duplicates']:,} duplicates and "
        f"{split['dropped']['tied_conflicting_labels']:,} with tied conflicting labels; "
        + ", ".join(f"{n} {len(split['splits'][n]):,}" for n in names))
    if args.ensemble:
        return run_ensemble(split, by_row, args.ensemble)
    # the fine-tuning flags are named after their FINETUNE_CONFIG keys; unset ones keep the default
    overrides = {k: v for k, v in vars(args).items() if k in FINETUNE_CONFIG and v is not None}
    if args.train_teacher:
        return run_teacher(split, by_row, names, args.train_teacher, overrides)
    if args.finetune:
        return run_finetune(split, by_row, names, t0, overrides, keep=args.keep, teachers=args.teacher)
    return run_frozen(split, by_row, names, t0, args.explore)


if __name__ == "__main__":
    sys.exit(main())
