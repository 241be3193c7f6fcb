"""Downloadable files (demos/downloads.py): the name the tab chose, and a directory that stays bounded."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from demos import downloads


@pytest.fixture
def fresh_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))
    monkeypatch.setattr(downloads, "_root", None)
    return tmp_path


def test_a_download_keeps_its_name_and_text_with_a_bom_for_spreadsheets(fresh_dir):
    path = Path(downloads.write_download("text,label\r\n猫,positive\r\n", "sentiment.csv"))
    assert path.name == "sentiment.csv" and fresh_dir in path.parents
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    assert path.read_bytes().decode("utf-8-sig") == "text,label\r\n猫,positive\r\n"
    again = Path(downloads.write_download("text,label\r\n猫,positive\r\n", "sentiment.csv"))
    assert again != path and path.is_file()  # two visitors' files never overwrite each other


def test_file_names_cannot_leave_the_download_directory(fresh_dir):
    path = Path(downloads.write_download("x", "../../etc/passwd"))
    assert downloads.download_dir() in path.parents and ".." not in path.name


def test_the_directory_never_holds_more_than_max_files(fresh_dir, monkeypatch):
    monkeypatch.setattr(downloads, "MAX_FILES", 5)
    for i in range(12):
        downloads.write_download(f"row {i}", "a.csv")
    files = [p for p in downloads.download_dir().rglob("*") if p.is_file()]
    assert len(files) == 5
    assert sorted(int(p.read_text(encoding="utf-8-sig").split()[1]) for p in files) == [7, 8, 9, 10, 11]


def test_files_older_than_max_age_are_removed_on_the_next_write(fresh_dir):
    old = Path(downloads.write_download("old", "a.csv"))
    an_hour_ago = time.time() - downloads.MAX_AGE_S - 5
    os.utime(old.parent, (an_hour_ago, an_hour_ago))
    new = Path(downloads.write_download("new", "b.csv"))
    assert not old.exists() and not old.parent.exists() and new.is_file()
