"""Checkpoint format: ``NAME.safetensors`` (weights) + ``NAME.json`` (metadata), side by side.

safetensors cannot execute code on load (unlike pickle), and the JSON sidecar is readable by
people and tools without torch. The metadata records everything inference needs besides the
weights (architecture, band order, normalisation, training resolution, threshold) plus the
weights' SHA-256, so a mismatched or corrupted pair is caught before it produces nonsense.
Every loading problem becomes one :class:`ModelMissingError` line naming the file.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from sanchari_processes import __version__
from sanchari_processes.errors import InvalidInputError, ModelMissingError
from sanchari_processes.inference.model import Architecture, build_model, get_preset

if TYPE_CHECKING:  # torch takes seconds to import: metadata and hashes do without it
    import torch

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
        return None

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
    }
)


class LoadedModel:
    """An eval-mode network on its device, with the metadata that says how to feed it."""

    __slots__ = ("device", "metadata", "module", "path")

    def __init__(
        self, module: torch.nn.Module, metadata: ModelMetadata, device: torch.device, path: Path
    ) -> None:
        self.module = module
        self.metadata = metadata
        self.device = device
        #: The ``.safetensors`` file the weights came from.
        self.path = path

    def __repr__(self) -> str:
        return f"LoadedModel({self.metadata.model_id!r}, device={self.device}, path={self.path})"


def resolve_device(name: str | torch.device) -> torch.device:
    """Map ``auto``/``cpu``/``cuda`` to a device; asking for absent CUDA is a caller error."""
    import torch

    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise InvalidInputError("CUDA requested but no CUDA device is available")
        return torch.device(name)
    raise InvalidInputError(f"unknown device {name!r}; use 'auto', 'cpu' or 'cuda'")


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


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def state_dict_mismatch(
    expected: Mapping[str, torch.Tensor], actual: Mapping[str, torch.Tensor]
) -> str | None:
    """Summarise key/shape differences in one line, or ``None`` when they match."""
    missing = sorted(set(expected) - set(actual))
    unexpected = sorted(set(actual) - set(expected))
    wrong = sorted(
        k for k in set(expected) & set(actual) if tuple(expected[k].shape) != tuple(actual[k].shape)
    )
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing key(s) (e.g. {missing[0]!r})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected key(s) (e.g. {unexpected[0]!r})")
    if wrong:
        k = wrong[0]
        parts.append(
            f"{len(wrong)} shape mismatch(es) (e.g. {k!r}: {tuple(actual[k].shape)} "
            f"vs expected {tuple(expected[k].shape)})"
        )
    return "; ".join(parts) or None


def _atomic_write(target: Path, write: Callable[[Path], object]) -> None:
    """Write via ``write(tmp_path)`` to a temp file beside ``target``, then rename over it."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(
    model: torch.nn.Module,
    metadata: ModelMetadata,
    path: str | os.PathLike[str],
    *,
    half: bool = False,
) -> Path:
    """Write ``NAME.safetensors`` + ``NAME.json`` atomically; returns the weights path.

    ``path`` may name either file or the bare stem. ``half`` stores floating tensors as float16
    (half the size; loading restores float32). The weights' SHA-256 is recorded in the JSON.
    The state dict is checked against ``metadata.architecture`` first, so a checkpoint that
    could not be loaded back is never written.
    """
    p = Path(path)
    import torch
    from safetensors.torch import save_file

    stem = p.with_suffix("") if p.suffix in (WEIGHTS_SUFFIX, METADATA_SUFFIX) else p
    weights = stem.parent / (stem.name + WEIGHTS_SUFFIX)
    meta_path = stem.parent / (stem.name + METADATA_SUFFIX)

    with torch.device("meta"):
        expected = build_model(metadata.architecture).state_dict()
    state = model.state_dict()
    problem = state_dict_mismatch(expected, state)
    if problem:
        raise InvalidInputError(f"model does not match metadata.architecture: {problem}")
    tensors = {
        k: v.detach()
        .to(device="cpu", dtype=torch.float16 if half and v.is_floating_point() else v.dtype)
        .contiguous()
        .clone()
        for k, v in state.items()
    }

    weights.parent.mkdir(parents=True, exist_ok=True)
    digest: list[str] = []

    def write_weights(tmp: Path) -> None:
        save_file(tensors, str(tmp), metadata={"format": "pt"})
        digest.append(file_sha256(tmp))

    _atomic_write(weights, write_weights)
    final = replace(metadata, weights_sha256=digest[0])
    text = json.dumps(final.to_dict(), indent=2) + "\n"
    _atomic_write(meta_path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return weights


def make_untrained_checkpoint(
    path: str | os.PathLike[str],
    preset: str | Architecture,
    *,
    seed: int = 0,
    half: bool = False,
    **meta: Any,
) -> Path:
    """Save a seeded random-weight checkpoint, to exercise the pipeline before training.

    ``preset`` is a preset name or an explicit architecture; ``meta`` overrides metadata fields.
    The output is flagged ``metrics["untrained"] = True`` so tools can warn that it is noise.
    The global torch RNG is left untouched.
    """
    import torch

    architecture = get_preset(preset) if isinstance(preset, str) else preset
    name = preset if isinstance(preset, str) else architecture.encoder_name
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(architecture)
    fields_: dict[str, Any] = {
        "model_id": f"untrained-{name}",
        "preset": preset if isinstance(preset, str) else None,
        "data": f"untrained: random weights (seed {seed})",
        "metrics": {"untrained": True},
    }
    fields_.update(meta)
    metadata = ModelMetadata(architecture=architecture, **fields_)
    return save_checkpoint(model, metadata, path, half=half)


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
        raise ModelMissingError(f"{meta_path}: cannot read ({_one_line(exc)})") from None
    try:
        return ModelMetadata.from_dict(raw)
    except InvalidInputError as exc:
        raise ModelMissingError(f"{meta_path}: invalid metadata: {exc.message}") from None


def load_checkpoint(path: str | os.PathLike[str], device: str | torch.device) -> LoadedModel:
    """Load and fully validate a checkpoint; any problem is one ModelMissingError line."""
    from safetensors.torch import load_file

    weights, _ = checkpoint_paths(path)
    metadata = read_metadata(weights)
    dev = resolve_device(device)

    actual = file_sha256(weights)
    if actual != metadata.weights_sha256:
        raise ModelMissingError(
            f"{weights}: SHA-256 {actual[:12]}... does not match metadata "
            f"{metadata.weights_sha256[:12] or '(empty)'}... (corrupted or replaced weights)"
        )
    try:
        state = load_file(str(weights), device="cpu")
    except Exception as exc:  # safetensors raises its own error types; report, don't dump
        raise ModelMissingError(
            f"{weights}: not a readable safetensors file ({_one_line(exc)})"
        ) from None
    try:
        module = build_model(metadata.architecture)
    except InvalidInputError as exc:
        raise ModelMissingError(f"{weights}: {exc.message}") from None
    problem = state_dict_mismatch(module.state_dict(), state)
    if problem:
        raise ModelMissingError(
            f"{weights}: weights do not match architecture "
            f"{metadata.architecture.encoder_name!r}: {problem}"
        )
    try:
        module.load_state_dict(_as_float(state), strict=True)
    except RuntimeError as exc:
        raise ModelMissingError(f"{weights}: cannot load weights ({_one_line(exc)})") from None
    module.requires_grad_(False)
    module.to(dev).eval()
    return LoadedModel(module, metadata, dev, weights)


def _as_float(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """float16 release files hold the same weights: compute in float32 on every device."""
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def load_float_weights(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """A ``.safetensors`` state dict on the CPU with floating tensors as float32 (training
    starts, resumes and mines from float16 release files as well as its own checkpoints)."""
    from safetensors.torch import load_file

    return _as_float(load_file(str(path), device="cpu"))


@functools.lru_cache(maxsize=4)
def _load_keyed(
    weights: str, weights_stat: tuple[int, int], meta_stat: tuple[int, int], device: str
) -> LoadedModel:
    """Cached on the files' (mtime_ns, size) so a replaced checkpoint is reloaded."""
    del weights_stat, meta_stat  # part of the cache key only
    return load_checkpoint(weights, device)


def load_model_cached(path: str | os.PathLike[str], device: str | torch.device) -> LoadedModel:
    """Load a checkpoint once per process (pygeoapi makes a new processor per request)."""
    weights, meta_path = checkpoint_paths(path)
    dev = resolve_device(device)
    ws, ms = weights.stat(), meta_path.stat()
    return _load_keyed(
        str(weights.resolve()),
        (ws.st_mtime_ns, ws.st_size),
        (ms.st_mtime_ns, ms.st_size),
        str(dev),
    )


def clear_model_cache() -> None:
    """Forget cached models (tests; or to free memory)."""
    _load_keyed.cache_clear()
