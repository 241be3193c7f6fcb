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


def test_classifier_rows_keep_the_newest_run_of_each_cpu(tmp_path):
    import json

    def write(name, device, date, torch_rate):
        rows = [{"runtime": "onnxruntime", "variant": "fp32", "p50_ms": 4.0, "sentences_per_s": 300.0,
                 "x_torch_throughput": 300.0 / torch_rate},
                {"runtime": "pytorch", "variant": "float32", "p50_ms": 16.0, "sentences_per_s": torch_rate}]
        doc = {"environment": {"device_name": device, "date": date, "ort_threads": 2}, "settings": {}, "rows": rows}
        (tmp_path / name).write_text(json.dumps(doc))

    write("classify-cpu-1.json", "Intel Xeon", "2026-12-01T00:00:00", 150.0)
    write("classify-cpu-2.json", "Intel Xeon", "2026-12-02T00:00:00", 330.0)
    write("classify-cpu-3.json", "AMD EPYC", "2026-12-03T00:00:00", 170.0)
    rows = readme_table.classify_rows(tmp_path)
    assert [re.search(r"classify-cpu-\d", r).group(0) for r in rows] == ["classify-cpu-3"] * 2 + ["classify-cpu-2"] * 2
    assert "0.91×" in rows[3] and "1.76×" in rows[1]


def test_classifier_rows_show_the_served_variant_and_pytorch_in_its_own_process(tmp_path):
    import json

    rows = [{"runtime": "onnxruntime", "variant": "fp32", "p50_ms": 4.0, "sentences_per_s": 240.0,
             "x_torch_throughput": 240.0 / 180.0},
            {"runtime": "onnxruntime", "variant": "int8", "p50_ms": 4.5, "sentences_per_s": 160.0,
             "x_torch_throughput": 160.0 / 180.0},
            {"runtime": "pytorch", "variant": "float32 (own process, default OpenMP waiting)", "p50_ms": 15.0,
             "sentences_per_s": 230.0, "contender": "pytorch float32, own process"},
            {"runtime": "pytorch", "variant": "float32", "p50_ms": 16.0, "sentences_per_s": 180.0}]
    doc = {"environment": {"device_name": "AMD EPYC", "date": "2026-12-07T00:00:00", "ort_threads": 2},
           "settings": {"served_variant": "int8"}, "rows": rows}
    (tmp_path / "classify-cpu-9.json").write_text(json.dumps(doc))
    single, batched, own = readme_table.classify_rows(tmp_path)
    assert "4.5 ms (int8)" in single and "PyTorch fp32 16.0 ms" in single  # the in-process row is the reference
    assert "160 sentences/s (int8)" in batched and "0.89×" in batched
    assert "own process" in own and "PyTorch fp32 230" in own and "0.70×" in own
