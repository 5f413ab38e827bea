"""A checkpoint's metadata (its ``NAME.json``): read, validated and matched to its weights.

Everything here works without torch, so tools that only inspect a model, or the exported
runtimes, start in a fraction of a second. Every problem is one :class:`ModelMissingError` line
naming the file.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from sanchari_processes import __version__
from sanchari_processes.errors import InvalidInputError, ModelMissingError
from sanchari_processes.inference.model import Architecture

FORMAT_VERSION = 1
SUPPORTED_FORMAT_VERSIONS = (1,)
WEIGHTS_SUFFIX = ".safetensors"
METADATA_SUFFIX = ".json"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_SHA256_RE = re.compile(r"[0-9a-f]{64}")


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class ModelMetadata:
    """What inference must know about a set of weights, stored as the checkpoint's JSON."""

    model_id: str
    architecture: Architecture
    preset: str | None = None
    bands: tuple[str, ...] = ("red", "green", "blue")
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    #: Pixels are divided by this before ``(x - mean) / std``.
    input_scale: float = 255.0
    #: Ground sample distance (metres per pixel) the model was trained at.
    gsd_m: float = 0.5
    #: Recommended probability threshold for the road mask.
    threshold: float = 0.45
    data: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    sanchari_version: str = __version__
    created: str = field(default_factory=_utc_now)
    #: Hex SHA-256 of the ``.safetensors`` file; filled by :func:`save_checkpoint`.
    weights_sha256: str = ""
    format_version: int = FORMAT_VERSION
    #: The exported network shipped beside the weights, so the CPU runtimes need no torch:
    #: ``{precision: {"format": "onnx"|"openvino", "files": {file name: SHA-256}}}`` (the first
    #: file is the one a runtime opens). Written by ``sanchari model-export``; emptied whenever
    #: new weights are saved, as they no longer match.
    exports: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problem = self._problem()
        if problem:
            raise InvalidInputError(problem)

    def _problem(self) -> str | None:
        """First inconsistency in the values, or ``None``; types are checked by from_dict."""
        n_in = self.architecture.in_channels
        if self.format_version not in SUPPORTED_FORMAT_VERSIONS:
            return f"format_version {self.format_version!r} is not supported (expected 1)"
        if not isinstance(self.model_id, str) or not self.model_id:
            return "model_id must be a non-empty string"
        if not self.bands or not all(isinstance(b, str) and b for b in self.bands):
            return "bands must be a non-empty list of band names"
        if not len(self.bands) == len(self.mean) == len(self.std) == n_in:
            return (
                f"bands, mean and std must each have in_channels={n_in} entries, got "
                f"{len(self.bands)}, {len(self.mean)}, {len(self.std)}"
            )
        if not all(_is_number(m) and math.isfinite(m) for m in self.mean):
            return "mean must be finite numbers"
        if not all(_is_number(s) and math.isfinite(s) and s > 0 for s in self.std):
            return "std must be positive numbers"
        if not (_is_number(self.input_scale) and math.isfinite(self.input_scale)) or (
            self.input_scale <= 0
        ):
            return f"input_scale must be positive, got {self.input_scale!r}"
        if not (_is_number(self.gsd_m) and math.isfinite(self.gsd_m)) or self.gsd_m <= 0:
            return f"gsd_m must be positive, got {self.gsd_m!r}"
        if not _is_number(self.threshold) or not 0.0 <= self.threshold <= 1.0:
            return f"threshold must be within 0..1, got {self.threshold!r}"
        if self.weights_sha256 and not _SHA256_RE.fullmatch(self.weights_sha256):
            return "weights_sha256 must be 64 lowercase hex digits"
        return _exports_problem(self.exports)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        data = asdict(self)
        data["architecture"] = self.architecture.to_dict()
        for key in ("bands", "mean", "std"):
            data[key] = list(data[key])
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelMetadata:
        """Parse and type-check the JSON form; raises InvalidInputError naming the field."""
        if not isinstance(data, Mapping):
            raise InvalidInputError("metadata must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidInputError(f"unknown field(s): {', '.join(unknown)}")
        missing = [name for name in _REQUIRED_FIELDS if name not in data]
        if missing:
            raise InvalidInputError(f"missing required field(s): {', '.join(missing)}")
        for name, (check, expected) in _FIELD_TYPES.items():
            if name in data and not check(data[name]):
                raise InvalidInputError(
                    f"field {name!r} must be {expected}, got {type(data[name]).__name__}"
                )
        kwargs = dict(data)
        kwargs["architecture"] = Architecture.from_dict(data["architecture"])
        for key in ("bands", "mean", "std"):
            kwargs[key] = tuple(data[key])
        return cls(**kwargs)


#: Formats an export entry may have, and the precisions it may be recorded for.
EXPORT_FORMATS = ("onnx", "openvino")
EXPORT_PRECISIONS = ("fp32", "int8")


def _exports_problem(exports: Mapping[str, Any]) -> str | None:
    """First problem with an ``exports`` value, or ``None``."""
    for precision, entry in exports.items():
        where = f"exports[{precision!r}]"
        if precision not in EXPORT_PRECISIONS:
            return f"{where}: precision must be one of {', '.join(EXPORT_PRECISIONS)}"
        if not isinstance(entry, Mapping) or entry.get("format") not in EXPORT_FORMATS:
            return f"{where} must be an object whose format is one of {', '.join(EXPORT_FORMATS)}"
        files = entry.get("files")
        if not isinstance(files, Mapping) or not files:
            return f"{where}.files must name at least one file"
        for name, digest in files.items():
            if not isinstance(name, str) or Path(name).name != name or name.startswith("."):
                return f"{where}.files: {name!r} must be a plain file name beside the weights"
            if not isinstance(digest, str) or not _SHA256_RE.fullmatch(digest):
                return f"{where}.files[{name!r}] must be a SHA-256 (64 lowercase hex digits)"
    return None


def _list_of(check: Callable[[object], bool]) -> Callable[[object], bool]:
    return lambda v: isinstance(v, list) and all(check(x) for x in v)


_REQUIRED_FIELDS = (
    "format_version",
    "model_id",
    "architecture",
    "bands",
    "mean",
    "std",
    "input_scale",
    "gsd_m",
    "threshold",
    "weights_sha256",
)
_FIELD_TYPES: Mapping[str, tuple[Callable[[object], bool], str]] = MappingProxyType(
    {
        "format_version": (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
        "model_id": (lambda v: isinstance(v, str), "a string"),
        "architecture": (lambda v: isinstance(v, dict), "an object"),
        "preset": (lambda v: v is None or isinstance(v, str), "a string or null"),
        "bands": (_list_of(lambda x: isinstance(x, str)), "a list of strings"),
        "mean": (_list_of(_is_number), "a list of numbers"),
        "std": (_list_of(_is_number), "a list of numbers"),
        "input_scale": (_is_number, "a number"),
        "gsd_m": (_is_number, "a number"),
        "threshold": (_is_number, "a number"),
        "data": (lambda v: isinstance(v, str), "a string"),
        "metrics": (lambda v: isinstance(v, dict), "an object"),
        "sanchari_version": (lambda v: isinstance(v, str), "a string"),
        "created": (lambda v: isinstance(v, str), "a string"),
        "weights_sha256": (lambda v: isinstance(v, str), "a string"),
        "exports": (lambda v: isinstance(v, dict), "an object"),
    }
)


def checkpoint_paths(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """``(weights, metadata)`` paths for a ``.safetensors``/``.json`` file or a directory.

    A directory must hold exactly one ``*.safetensors`` file, so a deployment can point at a
    folder without naming the weights.
    """
    p = Path(path)
    if p.is_dir():
        found = sorted(p.glob(f"*{WEIGHTS_SUFFIX}"))
        if len(found) != 1:
            what = "no" if not found else f"{len(found)}"
            raise ModelMissingError(
                f"{p}: directory holds {what} *{WEIGHTS_SUFFIX} checkpoints, expected exactly one"
            )
        p = found[0]
    if p.suffix == WEIGHTS_SUFFIX:
        weights, meta = p, p.with_suffix(METADATA_SUFFIX)
    elif p.suffix == METADATA_SUFFIX:
        weights, meta = p.with_suffix(WEIGHTS_SUFFIX), p
    else:
        raise ModelMissingError(f"{p}: not a checkpoint (expected a {WEIGHTS_SUFFIX} file)")
    for f in (weights, meta):
        if not f.is_file():
            raise ModelMissingError(f"{f}: file not found")
    return weights, meta


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, streamed so large weights need no extra memory."""
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def read_metadata(path: str | os.PathLike[str]) -> ModelMetadata:
    """Read and validate a checkpoint's JSON without touching the weights."""
    _, meta_path = checkpoint_paths(path)
    try:
        raw = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ModelMissingError(
            f"{meta_path}: not valid JSON ({exc.msg} at line {exc.lineno})"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelMissingError(f"{meta_path}: cannot read ({one_line(exc)})") from None
    try:
        return ModelMetadata.from_dict(raw)
    except InvalidInputError as exc:
        raise ModelMissingError(f"{meta_path}: invalid metadata: {exc.message}") from None


def verified_weights(weights: str | os.PathLike[str]) -> tuple[Path, ModelMetadata, str]:
    """``(weights path, metadata, sha256)`` after checking the file matches its metadata."""
    path, _ = checkpoint_paths(weights)
    metadata = read_metadata(path)
    actual = file_sha256(path)
    if actual != metadata.weights_sha256:
        raise ModelMissingError(
            f"{path}: SHA-256 {actual[:12]}... does not match metadata "
            f"{metadata.weights_sha256[:12] or '(empty)'}... (corrupted or replaced weights)"
        )
    return path, metadata, actual


def normalise(image: np.ndarray, metadata: ModelMetadata) -> np.ndarray:
    """``(x / input_scale - mean) / std`` per band, as float32 (the model's training input)."""
    mean = np.asarray(metadata.mean, dtype=np.float32)[:, None, None]
    std = np.asarray(metadata.std, dtype=np.float32)[:, None, None]
    scaled = image.astype(np.float32) / np.float32(metadata.input_scale)
    return (scaled - mean) / std
