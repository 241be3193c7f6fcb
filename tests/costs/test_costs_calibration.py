import statistics

import pytest

from costs import calibration
from costs.accelerators import get_accelerator


def test_at_least_25_published_runs_each_with_a_source_and_a_known_gpu():
    runs = calibration.load_runs()
    assert len(runs) >= 25
    for run in runs:
        assert run.source_url.startswith("https://")
        assert run.params > 0 and run.tokens > 0 and run.gpu_hours > 0
        get_accelerator(run.gpu)  # raises on an unknown name
        assert run.hours_basis in {"reported", "derived"}


def test_implied_mfu_of_llama2_70b_by_hand():
    run = next(r for r in calibration.load_runs() if r.run == "Llama-2-70B")
    assert run.implied_mfu == pytest.approx(6 * 69e9 * 2e12 / (1720320 * 3600 * 312e12))


def test_default_mfu_is_the_median_of_its_generation():
    hopper = [r.implied_mfu for r in calibration.load_runs() if r.accelerator.generation == "Hopper"]
    value, basis = calibration.default_mfu("H100 SXM")
    assert value == pytest.approx(statistics.median(hopper))
    assert str(len(hopper)) in basis


def test_generations_without_enough_runs_fall_back_to_the_pooled_median():
    pooled = statistics.median(r.implied_mfu for r in calibration.load_runs())
    value, basis = calibration.default_mfu("B200")
    assert value == pytest.approx(pooled) and "no published" in basis


def test_ratio_error_is_symmetric():
    assert calibration.ratio_error(2, 1) == calibration.ratio_error(1, 2) == 2.0


def test_leave_one_out_never_uses_the_run_it_predicts():
    runs = calibration.load_runs()[:4]  # four Ampere runs: LOO defaults come from the other three
    report = calibration.calibration_report(runs)
    for i, row in enumerate(report["leave_one_out"]["rows"]):
        others = [r.implied_mfu for j, r in enumerate(runs) if j != i]
        expected_hours = runs[i].flops / (runs[i].accelerator.peak_flops * statistics.median(others)) / 3600
        assert row["estimated_gpu_hours"] == pytest.approx(expected_hours)


def test_reported_figures_recompute_from_the_rows():
    report = calibration.calibration_report()
    s = report["in_sample"]
    errors = [row["ratio_error"] for row in s["rows"]]
    assert s["median_ratio_error"] == pytest.approx(statistics.median(errors))
    assert s["share_within_2x"] == pytest.approx(sum(e <= 2 for e in errors) / len(errors))
    assert s["worst_ratio_error"] == pytest.approx(max(errors))


def test_calibration_meets_the_goal_in_sample_and_beats_a_fixed_mfu():
    # regression guard: editing the data file or the method must not silently degrade the estimates
    report = calibration.calibration_report()
    assert report["in_sample"]["median_ratio_error"] <= 1.2
    assert report["in_sample"]["share_within_2x"] >= 0.95
    assert report["leave_one_out"]["share_within_2x"] >= 0.95
    assert report["in_sample"]["median_ratio_error"] < report["fixed_baseline"]["median_ratio_error"]
