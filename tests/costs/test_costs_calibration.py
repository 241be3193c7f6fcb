import json
import math
import statistics

import pytest

from costs import calibration
from costs.accelerators import get_accelerator


@pytest.fixture(scope="module")
def fresh_report():
    return calibration.calibration_report()


def test_at_least_25_published_runs_each_with_a_source_and_a_known_gpu():
    runs = calibration.load_runs()
    assert len(runs) >= 25
    for run in runs:
        assert run.source_url.startswith("https://")
        assert run.params > 0 and run.tokens > 0 and run.gpu_hours > 0
        get_accelerator(run.gpu)  # raises on an unknown name
        assert run.hours_basis in {"reported", "derived"}
        assert run.precision in calibration.PRECISIONS and 2017 <= run.year <= 2026


def test_implied_mfu_of_llama2_70b_by_hand():
    run = next(r for r in calibration.load_runs() if r.run == "Llama-2-70B")
    assert run.implied_mfu == pytest.approx(6 * 69e9 * 2e12 / (1720320 * 3600 * 312e12))


def test_fp8_runs_are_measured_against_the_fp8_dense_peak():
    run = next(r for r in calibration.load_runs() if r.precision == "fp8")
    assert run.peak_flops == get_accelerator(run.gpu).fp8_dense_tflops * 1e12
    with pytest.raises(ValueError, match="no FP8"):
        calibration.peak_flops(get_accelerator("A100-80GB"), "fp8")


def test_solver_recovers_known_coefficients():
    a = [[4.0, 1.0, 0.0], [1.0, 3.0, 1.0], [0.0, 1.0, 2.0]]
    x = [1.0, -2.0, 0.5]
    b = [sum(a[i][j] * x[j] for j in range(3)) for i in range(3)]
    assert calibration._solve(a, b) == pytest.approx(x)


def test_model_prediction_is_the_exp_of_the_linear_form():
    model = calibration.default_model()
    c = model.coefficients
    predicted = model.predict(get_accelerator("A100-80GB"), 1e11)
    assert predicted == pytest.approx(math.exp(c["intercept"] + c["ampere"] + c["log10_params_minus_10"] * 1.0))
    # bigger models reach a higher MFU in the published runs; the fit must say so
    assert c["log10_params_minus_10"] > 0
    assert model.predict(get_accelerator("H100"), 405e9) > model.predict(get_accelerator("H100"), 8e9)


def test_default_mfu_states_its_basis_and_error_band():
    value, basis = calibration.default_mfu("H100 SXM", 8e9)
    assert 0.05 < value < 0.8
    assert "published runs" in basis and "leave-one-out" in basis
    _, rough = calibration.default_mfu("B200", 7e10)
    assert "rough guess" in rough


def test_ratio_error_is_symmetric():
    assert calibration.ratio_error(2, 1) == calibration.ratio_error(1, 2) == 2.0


def test_leave_one_out_never_uses_the_run_it_predicts():
    runs = calibration.load_runs()[:6]
    loo = calibration.leave_one_out(runs)
    for i, row in enumerate(loo["rows"]):
        model = calibration.fit_mfu_model(runs[:i] + runs[i + 1:])
        run = runs[i]
        expected = run.flops / (run.peak_flops * model.predict(run.accelerator, run.compute_params)) / 3600
        assert row["estimated_gpu_hours"] == pytest.approx(expected)
        # and the run's own data changes its prediction (it is really held out)
        assert row["estimated_gpu_hours"] != pytest.approx(
            run.flops / (run.peak_flops * calibration.fit_mfu_model(runs).predict(
                run.accelerator, run.compute_params)) / 3600, rel=1e-9)


def test_reported_figures_recompute_from_the_rows(fresh_report):
    s = fresh_report["leave_one_out"]
    errors = [row["ratio_error"] for row in s["rows"]]
    assert s["median_ratio_error"] == pytest.approx(statistics.median(errors))
    assert s["share_within_2x"] == pytest.approx(sum(e <= 2 for e in errors) / len(errors))
    assert s["worst_ratio_error"] == pytest.approx(max(errors))
    band = fresh_report["error_band"]
    assert band["low"] < 1 < band["high"]


def test_committed_results_file_is_what_the_code_computes(fresh_report):
    """README and the tab quote calibration_report.json: it must be regenerated when data or method change."""
    committed = json.loads(calibration.REPORT_FILE.read_text(encoding="utf-8"))
    for key in ("in_sample", "leave_one_out", "fixed_baseline"):
        for field in ("median_ratio_error", "share_within_2x", "worst_ratio_error"):
            assert committed[key][field] == pytest.approx(fresh_report[key][field]), (key, field)
    assert committed["model"]["coefficients"] == pytest.approx(fresh_report["model"]["coefficients"])
    assert committed["error_band"]["low"] == pytest.approx(fresh_report["error_band"]["low"])
    assert len(committed["alternatives_leave_one_out"]) == len(fresh_report["alternatives_leave_one_out"])


def test_fit_beats_the_old_per_generation_median_and_a_fixed_mfu(fresh_report):
    # regression guard: editing the data file or the method must not silently degrade the estimates
    loo = fresh_report["leave_one_out"]
    generation_only = [a for a in fresh_report["alternatives_leave_one_out"]
                       if a["features"] == "generation only (+fp8)"]
    assert loo["median_ratio_error"] < min(a["median_ratio_error"] for a in generation_only)
    assert loo["median_ratio_error"] < fresh_report["fixed_baseline"]["median_ratio_error"]
    assert loo["share_within_2x"] >= 0.95


def test_year_feature_was_rejected_for_a_stated_reason(fresh_report):
    check = fresh_report["year_extrapolation_check"]
    assert check["year_model_mfu_a100_7b_2025"] > check["max_published_ampere_mfu"]
    assert "year_minus_2023" not in fresh_report["model"]["coefficients"]


def test_readme_quotes_the_committed_calibration_figures():
    from pathlib import Path
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    committed = calibration.committed_report()
    loo, band = committed["leave_one_out"], committed["error_band"]
    assert f"leave-one-out median ratio error {loo['median_ratio_error']:.3f}x" in readme
    assert f"{loo['share_within_2x']:.0%} within 2x" in readme
    assert f"{band['low']:.2f}-{band['high']:.2f}x the estimate" in readme
    assert f"{committed['in_sample']['n_runs']}\npublished runs" in readme or \
        f"{committed['in_sample']['n_runs']} published runs" in readme
