"""`python -m export.quantize [--only ID ...] [--lossy-int4] [--gate-only MODEL VARIANT]`."""
from __future__ import annotations

import argparse
import json
import sys

from export.quantize import __doc__ as DOC
from export.quantize.gate import quality_gate
from export.quantize.variants import add_cpu_variants, update_manifest


def main(argv: list[str] | None = None) -> int:
    from models.paths import model_dir
    from models.registry import REGISTRY

    parser = argparse.ArgumentParser(prog="python -m export.quantize", description=DOC,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=list(REGISTRY), help="restrict to these model ids")
    parser.add_argument("--lossy-int4", action="store_true", help="also write an all-4-bit variant of 8-bit models")
    parser.add_argument("--gate-only", nargs=2, metavar=("MODEL_ID", "VARIANT"), help="only run the quality gate")
    args = parser.parse_args(argv)
    if args.gate_only:
        gate = quality_gate(*args.gate_only)
        print(json.dumps(gate, indent=1))
        return 0 if gate["pass"] else 1
    failed = []
    for model_id in args.only or list(REGISTRY):
        directory = model_dir(model_id)
        if not (directory / "build.json").is_file():
            print(f"{model_id}: not exported ({directory}); run `python -m export` first", file=sys.stderr)
            continue
        print(f"{model_id}:", flush=True)
        current = json.loads((directory / "build.json").read_text()).get("variants")
        base = {k: v for k, v in current.items() if k == "fp32" or "cpu" not in v.get("devices", [])}
        variants = add_cpu_variants(directory, REGISTRY[model_id], base, lossy_int4=args.lossy_int4)
        update_manifest(directory, variants)
        failed += [f"{model_id} {name}" for name, entry in variants.items() if not entry.get("gate", {}).get("pass", True)]
    if failed:  # a variant that was asked for and failed its gate is a failed build (it is never served by default)
        print(f"quality gate FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
