"""Export every registry model into the model cache, once: a build is keyed on the source hash, the
exporter versions, the export settings and the repo files the model includes; a second run with nothing
changed does nothing and says so."""
from __future__ import annotations

import importlib
import json
import os
import shutil
import sys
import time
from dataclasses import asdict
from importlib.metadata import version

from models.paths import REPO_ROOT, model_dir
from models.registry import REGISTRY, ModelSpec
from models.sources import sha256_file, source_sha256

# Bump when the code in export/ changes what it writes, so stale caches are rebuilt.
EXPORT_FORMAT = 3  # 2: fused, weight-quantized CPU variants (export/quantize.py); 3: parity verdict recorded
EXPORTER_PACKAGES = ("torch", "transformers", "optimum", "optimum-onnx", "onnx", "onnxruntime")


def exporter_versions() -> dict[str, str]:
    return {pkg: version(pkg) for pkg in EXPORTER_PACKAGES}


def gpu_precisions_wanted() -> bool:
    """fp16 variants are built when a GPU will serve (CUDA provider present) or LAB_EXPORT_FP16=1."""
    flag = os.environ.get("LAB_EXPORT_FP16")
    if flag is not None:
        return flag == "1"
    import onnxruntime as ort

    return "CUDAExecutionProvider" in ort.get_available_providers()


def build_key(spec: ModelSpec) -> dict:
    """As stored in build.json (JSON round trip: tuples become lists), so equality means "same build"."""
    return json.loads(json.dumps({
        "format": EXPORT_FORMAT,
        "fp16": gpu_precisions_wanted() and spec.export.task != "custom",
        "source_sha256": source_sha256(spec),
        "repo_files": {f: sha256_file(REPO_ROOT / f) for f in spec.repo_files if (REPO_ROOT / f).is_file()},
        "settings": asdict(spec.export),
        "exporters": exporter_versions(),
    }))


def read_manifest(spec: ModelSpec) -> dict | None:
    path = model_dir(spec.id) / "build.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def is_up_to_date(spec: ModelSpec) -> bool:
    manifest = read_manifest(spec)
    if not manifest or manifest.get("key") != build_key(spec):
        return False
    return all((model_dir(spec.id) / v["file"]).is_file() for v in manifest.get("variants", {}).values())


def _exporter_for(spec: ModelSpec):
    if spec.export.task == "custom":
        target = dict(spec.export.extra)["exporter"]
        module, func = target.split(":")
        return getattr(importlib.import_module(module), func)
    from export import optimum_export

    return optimum_export.export_decoder if spec.gguf_file else optimum_export.export_encoder


def check_passed(spec: ModelSpec) -> bool:
    """The parity verdict recorded in build.json (False when missing or failed)."""
    return bool(((read_manifest(spec) or {}).get("check") or {}).get("ok"))


def _check(spec: ModelSpec, log) -> None:
    """Parity with PyTorch, recorded in build.json: the site serves only exports whose check passed."""
    from export.parity import format_report, record_check

    log(f"  {spec.id}: parity check against PyTorch")
    report = record_check(spec.id)
    log("  " + format_report(report).replace("\n", "\n  "))


def export_model(spec: ModelSpec, force: bool = False, log=print) -> bool:
    """Export one model and check it; returns True when something was built."""
    if not force and is_up_to_date(spec):
        if "check" not in (read_manifest(spec) or {}):
            _check(spec, log)
        log(f"  {spec.id}: up to date ({model_dir(spec.id)}), nothing to do")
        return False
    start = time.perf_counter()
    final = model_dir(spec.id)
    staging = final.with_name(final.name + ".building")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    _exporter_for(spec)(staging) if spec.export.task == "custom" else _exporter_for(spec)(spec, staging)
    variants = {"fp32": {"file": "model.onnx", "precision": "fp32", "default_for": ["cpu", "cuda"]}}
    extra = staging / "variants.json"  # an exporter may declare more variants (e.g. int8) it wrote
    if extra.is_file():
        variants = json.loads(extra.read_text())
        extra.unlink()
    from export import quantize

    # CPU variants (int4/int8 weights, fused graph) are written and quality-gated; a variant serves on CPU
    # only when it passes the gate (greedy tokens or perplexity vs fp32; classifier probabilities).
    variants = quantize.add_cpu_variants(staging, spec, variants, log=log)
    if build_key(spec)["fp16"]:
        from export.fp16 import write_fp16_variant

        log(f"  {spec.id}: writing the fp16 (GPU) variant")
        variants["fp32"]["default_for"] = [d for d in variants["fp32"]["default_for"] if d != "cuda"]
        variants.update(write_fp16_variant(staging))
    manifest = {
        "model_id": spec.id,
        "key": build_key(spec),
        "variants": variants,
        "files": {
            v["file"]: {"bytes": (staging / v["file"]).stat().st_size} for v in variants.values()
        },
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seconds": round(time.perf_counter() - start, 1),
    }
    (staging / "build.json").write_text(json.dumps(manifest, indent=2))
    shutil.rmtree(final, ignore_errors=True)
    staging.replace(final)
    log(f"  {spec.id}: exported in {manifest['seconds']} s -> {final}")
    _check(spec, log)
    return True


def export_all(ids: list[str] | None = None, force: bool = False, log=print) -> list[str]:
    """Export and check the given (or all) registry models in dependency order; returns the ids whose
    parity check failed (the site will not serve them)."""
    specs = [REGISTRY[i] for i in (ids or list(REGISTRY))]
    built = 0
    for index, spec in enumerate(specs, 1):
        log(f"[{index}/{len(specs)}] {spec.id} ({spec.title})")
        sys.stdout.flush()
        built += export_model(spec, force=force, log=log)
    failed = [spec.id for spec in specs if not check_passed(spec)]
    log(f"done: {built} exported, {len(specs) - built} already up to date"
        + (f"; parity check FAILED for {', '.join(failed)}: the site will not serve them" if failed else
           "; every parity check passed"))
    return failed
