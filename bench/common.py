"""Shared pieces of `python -m bench`: which variants to run, device and version facts, timing statistics,
the Markdown table and the JSON result file.

Timings on a shared machine are noisy, so every benchmark interleaves its contenders (one repetition of
each in turn, several rounds) and reports medians; ratios are taken within the same run only.
"""
from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

RESULTS_DIR = Path(__file__).resolve().parent / "results"
PACKAGES = ("onnxruntime", "onnxruntime-gpu", "onnx", "torch", "transformers", "numpy")


# --- device and environment ------------------------------------------------------------------------------

def ort_device() -> str:
    """'cpu' or 'cuda': what the site's runtime will use (MODEL_DEVICE, else what onnxruntime offers)."""
    from models.runtime import device

    return device()


def cpu_name() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    name = match.group(1).strip() if match else (platform.processor() or platform.machine())
    return f"{name}, {os.cpu_count()} logical cores"


def gpu_name() -> str:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20, check=True).stdout.strip()
        if out:
            return out.splitlines()[0]
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        import torch

        return torch.cuda.get_device_name(0)
    except Exception:  # noqa: BLE001 - any failure just means "unknown"
        return "unknown GPU"


def device_label(dev: str) -> str:
    return gpu_name() if dev == "cuda" else cpu_name()


def package_versions() -> dict[str, str]:
    found = {}
    for pkg in PACKAGES:
        try:
            found[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    found["python"] = platform.python_version()
    return found


def environment(dev: str) -> dict:
    from models.runtime import cpu_threads

    return {
        "device": dev,
        "device_name": device_label(dev),
        "cpu": cpu_name(),
        "ort_threads": cpu_threads(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "versions": package_versions(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "commit": git_commit(),
    }


def git_commit() -> str | None:
    """The checkout's commit (with '+dirty' when files differ), so a result names the code it measured."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")


# --- variants ------------------------------------------------------------------------------------------

def variants_for(model_id: str, dev: str, wanted: Sequence[str] | None = None) -> list[tuple[str, dict]]:
    """(name, manifest entry) of the variants to benchmark: the ones asked for, else fp32 and every variant
    meant for this device (an entry's 'devices', else its 'default_for')."""
    from models.runtime import manifest

    variants = manifest(model_id).get("variants", {})
    if wanted:
        missing = [w for w in wanted if w not in variants]
        if missing:
            raise SystemExit(f"{model_id} has no variant(s) {missing}; it has {sorted(variants)}")
        return [(w, variants[w]) for w in wanted]
    chosen = []
    for name, entry in variants.items():
        devices = entry.get("devices") or entry.get("default_for") or []
        if name == "fp32" or dev in devices:
            chosen.append((name, entry))
    return chosen


# --- statistics ----------------------------------------------------------------------------------------

def median(values: Sequence[float]) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.median(values)) if values else None


def percentile(values: Sequence[float], q: float) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.percentile(values, q)) if values else None


def ratio(value: float | None, baseline: float | None) -> float | None:
    if value is None or baseline is None or baseline == 0:
        return None
    return value / baseline


def interleave(contenders: dict[str, Callable[[], dict]], rounds: int, warmup: int = 1,
               log: Callable[[str], None] | None = None) -> dict[str, list[dict]]:
    """Run each contender once per round, in turn, after `warmup` untimed rounds; results per contender."""
    for _ in range(warmup):
        for fn in contenders.values():
            fn()
    results: dict[str, list[dict]] = {name: [] for name in contenders}
    for index in range(rounds):
        for name, fn in contenders.items():
            results[name].append(fn())
            if log:
                log(f"  round {index + 1}/{rounds} {name}: {_brief(results[name][-1])}")
    return results


def run_at_once(work: Callable[[int], None], count: int) -> tuple[float, float]:
    """Run work(0), ..., work(count - 1) in threads released together (visitors arriving at the same moment);
    return the common start (perf_counter) and the wall time until the last one ends."""
    barrier = threading.Barrier(count + 1)

    def run(index: int) -> None:
        barrier.wait()
        work(index)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    return start, time.perf_counter() - start


def _brief(sample: dict) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in sample.items()
                     if isinstance(v, (int, float, str)))


# --- output --------------------------------------------------------------------------------------------

@dataclass
class Column:
    key: str
    header: str
    fmt: str = "{:.1f}"  # applied to numbers; None/missing prints as "–"
    align: str = "right"


def fmt_value(value, fmt: str) -> str:
    if value is None:
        return "–"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return fmt.format(value)
    return str(value)


def markdown_table(columns: Sequence[Column], rows: Sequence[dict]) -> str:
    header = "| " + " | ".join(c.header for c in columns) + " |"
    rule = "|" + "|".join("---:" if c.align == "right" else ":---" for c in columns) + "|"
    body = ["| " + " | ".join(fmt_value(row.get(c.key), c.fmt) for c in columns) + " |" for row in rows]
    return "\n".join([header, rule, *body])


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "device"


def results_path(name: str, dev: str, out_dir: Path | None = None, when: float | None = None) -> Path:
    """bench/results/<name>-<device>-<date>.json (device: 'cpu' or 'cuda'; date with time of day)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(when))
    return (out_dir or RESULTS_DIR) / f"{name}-{slug(dev)}-{stamp}.json"


@dataclass
class Report:
    """One benchmark's result: what ran where, the rows of the table, and the raw samples."""

    name: str
    env: dict
    settings: dict
    rows: list[dict] = field(default_factory=list)
    samples: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    concurrency: list[dict] = field(default_factory=list)  # N streams through the engine (generate/translate)

    def write(self, out_dir: Path | None = None) -> Path:
        path = results_path(self.name, self.env["device"], out_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"benchmark": self.name, "environment": self.env, "settings": self.settings,
                   "rows": self.rows, "concurrency": self.concurrency, "notes": self.notes, "samples": self.samples}
        path.write_text(json.dumps(payload, indent=1, ensure_ascii=False, default=float))
        return path

    def header(self) -> str:
        env = self.env
        versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items())
        load = env.get("load_average")
        load_text = f"; load average {load[0]:.1f}" if load else ""
        return (f"{self.name} on {env['device']} ({env['device_name']}; onnxruntime threads {env['ort_threads']}"
                f"{load_text}), {env['date']}\n{versions}")
