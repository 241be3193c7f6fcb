"""Files the tabs hand to a gr.File for download (classify's results CSV, attention's matrix CSV).

One place writes them, into one temporary directory per site process that never grows without bound:
each write first removes entries older than MAX_AGE_S and keeps at most MAX_FILES, and a background
thread removes old entries between writes. Gradio copies every
returned file into its own cache as well; app.py bounds that copy with gr.Blocks(delete_cache=...).
Each file gets its own sub-directory, so the visitor downloads it under the name the tab chose
("sentiment.csv"), while two visitors' files never collide.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path

# A visitor has an hour to press "download"; Gradio's cached copies live as long (app.py). LAB_TEMP_MAX_AGE_S
# shortens both (the soak test uses it to see the pruning within its run).
MAX_AGE_S = int(os.environ.get("LAB_TEMP_MAX_AGE_S", "3600"))
MAX_FILES = 200  # and at most this many files exist at once, whatever the traffic
_lock = threading.Lock()
_root: Path | None = None


def download_dir() -> Path:
    """This process's download directory (created on first use, inside GRADIO_TEMP_DIR when that is set)."""
    global _root
    with _lock:
        if _root is None or not _root.is_dir():
            parent = os.environ.get("GRADIO_TEMP_DIR") or None
            if parent:
                Path(parent).mkdir(parents=True, exist_ok=True)
            _root = Path(tempfile.mkdtemp(prefix="lab-downloads-", dir=parent))
            # old files also go when nobody writes a new one (pruning on write alone would keep the last ones)
            threading.Thread(target=_prune_forever, args=(_root,), name="downloads-pruner", daemon=True).start()
        return _root


def _prune_forever(root: Path) -> None:
    while root.is_dir():
        time.sleep(max(10, MAX_AGE_S // 6))  # the rhythm of Gradio's own cache cleaning (app.py)
        with _lock:
            if root.is_dir():
                _prune(root)


def _prune(root: Path) -> None:
    entries = []
    for entry in sorted(root.iterdir()):  # names start with the creation time: oldest first
        try:
            entries.append((entry.stat().st_mtime, entry))
        except FileNotFoundError:
            continue
    now = time.time()
    for index, (mtime, entry) in enumerate(entries):
        if now - mtime > MAX_AGE_S or len(entries) - index >= MAX_FILES:  # keep room for the new file
            shutil.rmtree(entry, ignore_errors=True)


def write_download(text: str, filename: str) -> str:
    """Write `text` (UTF-8 with a BOM, so spreadsheets show Chinese) as `filename`; return its path for gr.File.

    CSV text must come from models.csv_export.table_to_csv, which makes visitor text formula-safe."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", filename).strip("._") or "download"
    root = download_dir()
    with _lock:
        _prune(root)
        folder = root / f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
        folder.mkdir()
    path = folder / safe
    path.write_text(text, encoding="utf-8-sig", newline="")
    return str(path)

