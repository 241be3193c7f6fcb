"""python -m export            export every registry model into the cache (idempotent) and check it
                            against PyTorch; exit 1 if a check failed (such a model is not served)
python -m export --check    parity report: PyTorch vs ONNX Runtime on the same inputs; exit 1 if out of tolerance"""
from __future__ import annotations

import argparse
import sys

from models.registry import REGISTRY
from models.sources import SourceError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="run the parity report instead of exporting")
    parser.add_argument("--only", nargs="+", choices=list(REGISTRY), help="restrict to these model ids")
    parser.add_argument("--force", action="store_true", help="rebuild even when the cache is up to date")
    args = parser.parse_args(argv)
    try:
        if args.check:
            from export.parity import run_checks

            return 0 if run_checks(args.only) else 1
        from export.build import export_all

        return 1 if export_all(args.only, force=args.force) else 0
    except SourceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
