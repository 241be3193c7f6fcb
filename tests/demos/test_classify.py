"""Classify tab: handlers, errors as gr.Error, the `classify` API, batch mode with 1,000 lines, model card.

Uses the real exported classifier (exported once per test session into the session's temp dir)."""
from __future__ import annotations

import csv

import gradio as gr
import pytest

from demos import classify
from models import batch_io, sentiment


def _blocks():
    with gr.Blocks() as demo:
        classify.build(demo)
    return demo


def test_api_named_classify_takes_text_and_returns_a_label():
    demo = _blocks()
    fns = [fn for fn in demo.fns.values() if fn.api_name == "classify"]
    assert len(fns) == 1
    fn = fns[0]
    assert [type(b) for b in fn.inputs] == [gr.Textbox] and [type(b) for b in fn.outputs] == [gr.Label]
    # the other events stay out of the public API
    public = [f.api_name for f in demo.fns.values() if f.api_visibility == "public"]
    assert public == ["classify"]


def test_classify_text_gives_probabilities_and_the_right_label(real_sentiment):
    probs = classify.classify_text("I absolutely love this, thank you so much!")
    assert set(probs) == set(sentiment.LABELS) and max(probs, key=probs.get) == "positive"
    probs = classify.classify_text("This is the worst service I have ever had.")
    assert max(probs, key=probs.get) == "negative"


@pytest.mark.parametrize("text", ["", "   ", None])
def test_empty_text_is_a_gr_error(real_sentiment, text):
    with pytest.raises(gr.Error, match="empty"):
        classify.classify_text(text)


def test_explain_text_highlights_each_word_in_range(real_sentiment):
    words, note = classify.explain_text("the flight was awful")
    assert [w for w, _ in words] == ["the ", "flight ", "was ", "awful"]
    assert all(-1.0 <= s <= 1.0 for _, s in words) and max(abs(s) for _, s in words) == 1.0
    assert "awful" == max(words, key=lambda ws: ws[1])[0]  # the word that carries the prediction
    assert "largest change" in note
    _, long_note = classify.explain_text("nice " * 300)
    assert "first 128 tokens" in long_note


def test_batch_mode_1000_pasted_lines_table_and_csv(real_sentiment):
    lines = [("I love it " if i % 2 else "I hate it ") + str(i) for i in range(1000)]
    table, path, summary = classify.classify_batch(None, "\n".join(lines))
    assert list(table.columns) == list(batch_io.BATCH_COLUMNS) and len(table) == 1000
    assert table["text"].tolist() == lines
    assert (table["label"][1::2] == "positive").mean() > 0.95 and (table["label"][::2] == "negative").mean() > 0.95
    with open(path, newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == list(batch_io.BATCH_COLUMNS) and len(rows) == 1001
    assert summary.startswith("1,000 texts")


def test_batch_mode_csv_upload(real_sentiment, tmp_path):
    up = tmp_path / "reviews.csv"
    up.write_text("id,text\n1,Fantastic trip. Thanks!\n2,\"Lost my bag, again. Furious.\"\n", encoding="utf-8")
    table, _, _ = classify.classify_batch(str(up), "")
    assert table["label"].tolist() == ["positive", "negative"]


@pytest.mark.parametrize("content, message", [
    (b"comment,label\nhi,pos\n", "no 'text' column"),
    (b"", "empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
])
def test_batch_mode_bad_uploads_are_gr_errors(tmp_path, content, message):
    up = tmp_path / "bad.csv"
    up.write_bytes(content)
    with pytest.raises(gr.Error, match=message):
        classify.classify_batch(str(up), "")


def test_batch_mode_without_input_is_a_gr_error():
    with pytest.raises(gr.Error, match="Upload"):
        classify.classify_batch(None, "  ")


def test_model_card_shows_data_balance_splits_metrics_and_limits():
    metrics = sentiment.load_metrics()
    assert metrics is not None, "models/weights/sentiment_metrics.json is missing"
    card = classify.model_card_markdown(metrics)
    assert f"{metrics['test']['accuracy']:.3f}" in card and f"{metrics['test']['macro_f1']:.3f}" in card
    assert "negative 16,186" in card and "positive 6,954" in card
    assert f"test {metrics['split_sizes']['test']:,}" in card
    for phrase in ("English tweets", "Neutral", "domains"):
        assert phrase in card
    assert "Metrics appear here" in classify.model_card_markdown(None)
    # a distilled run says what its teacher was and how much of the loss it set
    run = metrics.get("finetune_run", {})
    assert ("**Distilled.**" in card) == bool(run.get("distill"))
    distilled = classify.distillation_lines({"distill": 0.5, "distill_temperature": 2.0, "teacher": "mpnet", "augment": 1})
    assert distilled == ["**Distilled.** 50% of each training tweet's loss follows a teacher's softened distribution "
                         "(T 2) instead of its crowd label; the teacher: mpnet. Each training tweet also appears as up "
                         "to 1 noisy variant(s) (words dropped and swapped) that learn from the teacher alone."]
    assert classify.distillation_lines({"distill": 0.0}) == []


def test_api_end_to_end_through_gradio_client(real_sentiment):
    from gradio_client import Client

    demo = _blocks()
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=None, quiet=True)
    try:
        client = Client(demo.local_url, verbose=False)
        result = client.predict("What a fantastic, friendly crew. Loved it!", api_name="/classify")
        assert result["label"] == "positive"
        assert {c["label"] for c in result["confidences"]} == set(sentiment.LABELS)
    finally:
        demo.close()


def test_batch_csv_download_neutralises_formulas_and_keeps_the_table_as_typed(real_sentiment):
    hostile = ['=HYPERLINK("http://evil.example","click")', "+1+1", "-2+3 worst flight", "@SUM(1,1) great"]
    table, path, _ = classify.classify_batch(None, "\n".join(hostile))
    assert table["text"].tolist() == hostile  # the page shows the text exactly as typed
    with open(path, newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.reader(fh))
    assert [row[0] for row in rows[1:]] == ["'" + t for t in hostile]
    assert [row[1] for row in rows[1:]] == table["label"].tolist()
