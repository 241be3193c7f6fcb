import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "costs", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


def test_train_json_contract_with_gpus_and_price():
    proc = run_cli("train", "--params", "7e9", "--tokens", "2e12", "--gpu", "h100_sxm", "--gpus", "1024",
                   "--mfu", "0.4", "--price", "2.5", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["gpu"] == "H100-80GB" and data["mfu"] == 0.4
    assert data["flops"] == pytest.approx(8.4e22)
    hours = 8.4e22 / (989e12 * 0.4) / 3600
    assert data["gpu_hours"] == pytest.approx(hours)
    assert data["wall_days"] == pytest.approx(hours / 1024 / 24)
    assert data["cost_usd"] == pytest.approx(hours * 2.5)


def test_train_json_without_gpus_has_no_wall_days_and_uses_defaults():
    proc = run_cli("train", "--params", "70B", "--tokens", "2T", "--gpu", "A100-80GB", "--active-params", "70B",
                   "--json")
    data = json.loads(proc.stdout)
    assert proc.returncode == 0 and "wall_days" not in data
    assert {"flops", "gpu_hours", "mfu", "gpu", "cost_usd"} <= set(data)
    assert 0 < data["mfu"] < 1


@pytest.mark.parametrize("args,needle", [
    (["--gpu", "H900"], "Unknown accelerator"),
    (["--gpu", "H100", "--params", "-7e9"], "greater than zero"),
    (["--gpu", "H100", "--params", "0"], "greater than zero"),
    (["--gpu", "H100", "--tokens", "nan"], "finite"),
    (["--gpu", "H100", "--tokens", "inf"], "finite"),
    (["--gpu", "H100", "--mfu", "1.5"], "fraction"),
])
def test_bad_input_exits_2_with_a_message_on_stderr(args, needle):
    base = {"--params": "7e9", "--tokens": "2e12"}
    for flag, value in zip(args[::2], args[1::2]):
        base[flag] = value
    argv = ["train", "--json"] + [x for kv in base.items() for x in kv]
    proc = run_cli(*argv)
    assert proc.returncode == 2
    assert needle in proc.stderr and proc.stdout == ""


def test_semantic_error_after_parsing_also_exits_2():
    proc = run_cli("train", "--params", "7e9", "--tokens", "1e12", "--gpu", "H100", "--active-params", "8e9",
                   "--json")
    assert proc.returncode == 2 and "active params" in proc.stderr


def test_calibrate_prints_the_figures():
    proc = run_cli("calibrate")
    assert proc.returncode == 0
    for needle in ("median ratio err", "within 2x", "leave-one-out", "worst", "Hopper", "Ampere"):
        assert needle in proc.stdout


def test_memory_and_serve_subcommands_give_json():
    mem = json.loads(run_cli("memory", "--preset", "llama2-7b", "--gpu", "A100-80GB", "--zero", "3", "--dp", "8",
                             "--recompute", "selective", "--json").stdout)
    assert mem["bytes_per_param_unsharded"] == 16 and mem["min_gpus"] >= 1
    serve = json.loads(run_cli("serve", "--preset", "llama3-8b", "--gpu", "L4", "--json").stdout)
    assert serve["gpu"] == "L4" and serve["tokens_per_s"] > 0


def test_new_subcommands_print_json_with_stable_keys():
    ft = json.loads(run_cli("finetune", "--preset", "llama-65b", "--method", "qlora", "--rank", "64", "--targets",
                            "all-linear", "--gpu", "L40S", "--seq-len", "512", "--json").stdout)
    assert {"trainable_params", "per_gpu_gb", "fits", "min_gpus", "gpu_hours", "mfu"} <= set(ft) and ft["fits"]
    fl = json.loads(run_cli("fleet", "--preset", "llama3-70b", "--gpu", "H100-80GB", "--qps", "10", "--json").stdout)
    assert {"gpus", "tp", "batch", "tpot_s", "ttft_s", "usd_per_million_input_tokens",
            "usd_per_million_output_tokens", "efficiency_source"} <= set(fl)
    be = json.loads(run_cli("breakeven", "--params", "8e9", "--gpu", "H100-80GB", "--api-model", "gpt-4o-mini",
                            "--json").stdout)
    assert be["api_usd_per_1m_input"] == 0.15 and {"break_even_monthly_tokens", "cheaper"} <= set(be)


@pytest.mark.parametrize("args,flag", [
    (["fleet", "--preset", "llama3-70b", "--gpu", "H100-80GB", "--tp", "3"], "--tp"),
    (["fleet", "--params", "7e9", "--gpu", "H100-80GB", "--qps", "1,5"], "--qps"),
    (["breakeven", "--params", "8e9", "--gpu", "H100-80GB", "--util", "2", "--api-in", "1", "--api-out", "1"],
     "--util"),
    (["breakeven", "--params", "8e9", "--gpu", "H100-80GB"], "--api-in"),
    (["finetune", "--gpu", "H100-80GB"], "--preset/--params"),
    (["finetune", "--preset", "llama2-7b", "--gpu", "H100", "--rank", "0"], "--rank"),
    (["train", "--params", "7e9", "--tokens", "1e12", "--gpu", "V100", "--price-kind", "spot"], "--price-kind"),
    (["serve", "--preset", "llama3-8b", "--gpu", "A100x"], "--gpu"),
])
def test_bad_input_exits_2_naming_the_flag(args, flag):
    proc = run_cli(*args, "--json")
    assert proc.returncode == 2 and f"argument {flag}" in proc.stderr and proc.stdout == "", proc.stderr


def test_serve_gives_no_price_for_a_setup_that_does_not_fit():
    proc = run_cli("serve", "--preset", "llama3-70b", "--gpu", "L4")
    assert proc.returncode == 0 and "DOES NOT FIT" in proc.stdout and "per 1M" not in proc.stdout
    data = json.loads(run_cli("serve", "--preset", "llama3-70b", "--gpu", "L4", "--json").stdout)
    assert data["fits_in_memory"] is False and "usd_per_million_output_tokens" not in data
