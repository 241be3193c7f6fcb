"""The README's speed table is generated from the committed results files (bench/readme_table.py)."""
from __future__ import annotations

import re

from bench import readme_table


def test_readme_speed_table_is_exactly_the_table_generated_from_the_results_files():
    text = readme_table.README.read_text(encoding="utf-8")
    block = text.split(readme_table.START, 1)[1].split(readme_table.END, 1)[0].strip()
    assert block == readme_table.build_table(), "run `python -m bench.readme_table --write` after new results"


def test_every_row_names_a_results_file_that_exists_and_carries_device_and_date():
    rows = readme_table.build_table().splitlines()[2:]
    assert rows, "no results files found"
    for row in rows:
        source = re.search(r"`([^`]+\.json)`", row).group(1)
        assert (readme_table.REPO / source).is_file(), source
        assert re.search(r"\d{4}-\d{2}-\d{2}", row), row


def test_a_missing_block_is_a_clear_error():
    import pytest

    with pytest.raises(ValueError, match="speed-table"):
        readme_table.replace_block("no markers here", "table")
