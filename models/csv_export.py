"""The one CSV writer for every file the site lets visitors download (batch classification, attention).

Visitor text ends up in these files, and a spreadsheet runs a cell that starts with `=`, `+`, `-`, `@`,
tab or carriage return as a formula ("CSV injection", OWASP). Each such string cell gets a leading
apostrophe, the OWASP recipe: spreadsheets then show the text as typed (the apostrophe is not displayed)
and never evaluate it. Numbers are data and pass through untouched, so -0.5 stays a number.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value):
    """A string a spreadsheet would run as a formula gets a leading apostrophe; anything else is unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def table_to_csv(header: Sequence, rows: Iterable[Sequence]) -> str:
    """CSV text (header + rows), every cell passed through csv_safe; quoting by the csv module."""
    buffer = io.StringIO()
    # CRLF line ends (RFC 4180) also make the csv module quote a cell holding a bare CR, which a "\n"
    # terminator leaves unquoted, splitting the row for every reader.
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([csv_safe(h) for h in header])
    for row in rows:
        writer.writerow([csv_safe(v) for v in row])
    return buffer.getvalue()
