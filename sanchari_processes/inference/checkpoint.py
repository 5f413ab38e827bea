"""Checkpoint format: ``NAME.safetensors`` (weights) + ``NAME.json`` (metadata), side by side.

safetensors cannot execute code on load (unlike pickle), and the JSON sidecar is readable by
people and tools without torch. The metadata records everything inference needs besides the
weights (architecture, band order, normalisation, training resolution, threshold) plus the
weights' SHA-256, so a mismatched or corrupted pair is caught before it produces nonsense.
Every loading problem becomes one :class:`ModelMissingError` line naming the file.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sanchari_processes.errors import InvalidInputError, ModelMissingError
from sanchari_processes.inference.metadata import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    METADATA_SUFFIX,
    WEIGHTS_SUFFIX,
    ModelMetadata,
    checkpoint_paths,
    file_sha256,
    one_line,
    read_metadata,
    verified_weights,
)
from sanchari_processes.inference.model import Architecture, build_model, get_preset

#: The metadata names stay importable from here, the checkpoint format's one front door.
__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "LoadedModel",
    "ModelMetadata",
    "checkpoint_paths",
    "clear_model_cache",
    "file_sha256",
    "load_checkpoint",
    "load_float_weights",
    "load_model_cached",
    "make_untrained_checkpoint",
    "read_metadata",
    "resolve_device",
    "save_checkpoint",
    "state_dict_mismatch",
    "verified_weights",
]

if TYPE_CHECKING:  # torch takes seconds to import: metadata and hashes do without it
    import torch


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
    # exports of earlier weights do not run these: `sanchari model-export` lists new ones
    final = replace(metadata, weights_sha256=digest[0], exports={})
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


def load_checkpoint(path: str | os.PathLike[str], device: str | torch.device) -> LoadedModel:
    """Load and fully validate a checkpoint; any problem is one ModelMissingError line."""
    from safetensors.torch import load_file

    weights, metadata, _ = verified_weights(path)
    dev = resolve_device(device)
    try:
        state = load_file(str(weights), device="cpu")
    except Exception as exc:  # safetensors raises its own error types; report, don't dump
        raise ModelMissingError(
            f"{weights}: not a readable safetensors file ({one_line(exc)})"
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
        raise ModelMissingError(f"{weights}: cannot load weights ({one_line(exc)})") from None
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
