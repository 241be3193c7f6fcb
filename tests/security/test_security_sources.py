"""Model source files are verified by sha256 before anything loads them: a corrupted copy is refused."""
from __future__ import annotations

import hashlib
import os

import pytest

from models import sources
from models.registry import SMOLLM2
from models.sources import SourceError, verify_sha256

PAYLOAD = os.urandom(64 * 1024) + b"GGUF weights stand-in"
GOOD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def weights(tmp_path):
    path = tmp_path / "model.gguf"
    path.write_bytes(PAYLOAD)
    return path


def _flip_one_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_an_intact_file_passes(weights):
    verify_sha256(weights, GOOD_SHA)


def test_a_corrupted_copy_is_refused_with_both_hashes_named(weights):
    _flip_one_byte(weights)
    with pytest.raises(SourceError) as refused:
        verify_sha256(weights, GOOD_SHA)
    message = str(refused.value)
    assert "corrupt" in message and GOOD_SHA in message
    assert hashlib.sha256(weights.read_bytes()).hexdigest() in message


def test_a_truncated_copy_is_refused(weights):
    weights.write_bytes(PAYLOAD[:-1])
    with pytest.raises(SourceError):
        verify_sha256(weights, GOOD_SHA)


def test_a_file_corrupted_after_a_good_check_is_refused_despite_the_remembered_verdict(weights):
    verify_sha256(weights, GOOD_SHA)  # remembers the verdict for this size + mtime
    assert weights.with_name(weights.name + ".sha256.json").is_file()
    before = weights.stat().st_mtime_ns
    _flip_one_byte(weights)
    os.utime(weights, ns=(before + 1_000_000, before + 1_000_000))  # rewritten: a newer mtime
    with pytest.raises(SourceError):
        verify_sha256(weights, GOOD_SHA)


def test_the_remembered_verdict_is_only_for_the_hash_it_was_checked_against(weights):
    verify_sha256(weights, GOOD_SHA)
    with pytest.raises(SourceError):
        verify_sha256(weights, "0" * 64)


def test_source_path_refuses_a_corrupted_packaged_model(weights, monkeypatch):
    """The loader's entry point (export and torch reference both go through source_path) checks the hash."""
    monkeypatch.setattr(sources, "packaged_file", lambda source: weights)
    with pytest.raises(SourceError) as refused:
        sources.source_path(SMOLLM2)  # the real registry hash cannot match this stand-in file
    assert SMOLLM2.sources[0].sha256 in str(refused.value)
