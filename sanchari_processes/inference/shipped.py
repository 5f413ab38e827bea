"""The exported network a model folder carries beside its weights, so it runs without torch.

A model's JSON lists its exports (:attr:`ModelMetadata.exports`): per precision, the format
and each file's SHA-256. The files sit beside the ``.safetensors`` and are hashed on every
load, like the weights, so a corrupted or swapped export is refused instead of run. Writing
a new entry rewrites the JSON atomically; the weights are never touched.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

from sanchari_processes.errors import ModelMissingError
from sanchari_processes.inference.metadata import (
    ModelMetadata,
    checkpoint_paths,
    file_sha256,
    read_metadata,
)


def shipped_export(weights: Path, metadata: ModelMetadata, precision: str) -> Path | None:
    """The verified file a runtime opens for ``precision``, or ``None`` when none is listed.

    A listed file that is missing or whose bytes no longer hash as recorded is an error: the
    folder was damaged, and silently exporting again would hide it.
    """
    entry = metadata.exports.get(precision)
    if entry is None:
        return None
    folder = weights.parent
    for name, digest in entry["files"].items():
        path = folder / name
        if not path.is_file():
            raise ModelMissingError(f"{path}: file not found (listed in the model's exports)")
        actual = file_sha256(path)
        if actual != digest:
            raise ModelMissingError(
                f"{path}: SHA-256 {actual[:12]}... does not match the model's exports "
                f"{digest[:12]}... (corrupted or replaced export)"
            )
    return folder / next(iter(entry["files"]))


def record_export(weights: Path, precision: str, fmt: str, files: list[Path]) -> ModelMetadata:
    """List ``files`` (beside ``weights``, the runtime's file first) as ``precision``'s export."""
    weights, meta_path = checkpoint_paths(weights)
    metadata = read_metadata(weights)
    entry = {"format": fmt, "files": {f.name: file_sha256(f) for f in files}}
    updated = replace(metadata, exports={**metadata.exports, precision: entry})
    write_metadata(meta_path, updated)
    return updated


def write_metadata(path: Path, metadata: ModelMetadata) -> None:
    """Write a model's JSON via a temporary file and a rename (never half-written)."""
    text = json.dumps(metadata.to_dict(), indent=2) + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        Path(tmp).chmod(0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def copy_exports(source: Path, metadata: ModelMetadata, folder: Path, stem: str) -> ModelMetadata:
    """Copy ``source``'s listed exports into ``folder`` renamed after ``stem``; the metadata
    listing the copies (a recalibrated model keeps its base's network and so its exports)."""
    exports: dict[str, dict[str, object]] = {}
    old_stem = source.stem
    for precision, entry in metadata.exports.items():
        shipped_export(source, metadata, precision)  # verified before being copied
        files: dict[str, str] = {}
        for name, digest in entry["files"].items():
            new = stem + name[len(old_stem) :] if name.startswith(old_stem) else name
            shutil.copyfile(source.parent / name, folder / new)
            files[new] = digest
        exports[precision] = {"format": entry["format"], "files": files}
    return replace(metadata, exports=exports)
