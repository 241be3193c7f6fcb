"""docs/scale-out.md shows exactly the table `python -m bench.scale` generates from its newest results file."""
from __future__ import annotations

import json
import re

from bench.scale import table
from models.paths import REPO_ROOT

RESULTS = REPO_ROOT / "bench" / "results"
DOC = REPO_ROOT / "docs" / "scale-out.md"


def newest_scale_results() -> dict:
    files = sorted(RESULTS.glob("scale-*.json"))
    assert files, "no bench/results/scale-*.json: run `python -m bench.scale`"
    return json.loads(files[-1].read_text())


def test_the_scale_out_doc_table_is_generated_from_the_committed_results():
    shown = re.search(r"<!-- scale-table:start -->\n(.*?)\n<!-- scale-table:end -->", DOC.read_text(), re.S)
    assert shown, "docs/scale-out.md lost its scale-table markers"
    assert shown.group(1).strip() == table(newest_scale_results()).strip()


def test_the_committed_fault_run_lost_no_request():
    fault = next(row for row in newest_scale_results()["rows"] if row["measure"] == "fault")
    assert fault["lost"] == 0 and fault["completed"] + fault["cut_short_with_message"] == fault["requests"]
    assert fault["recovery_s"] is not None
