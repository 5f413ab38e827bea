"""Checkpoints exported to ONNX once, cached by the weights' SHA-256, and verified on every use.

Layout: ``CACHE/models/<weights sha256>/model.onnx`` (float32; ``model-int8.onnx`` when built)
with ``model.json`` recording the export: format, the weights' and the file's SHA-256, the
exporter. Files are written to a temporary name and renamed, the record last, so a crash leaves
no half-written model that looks finished; a record that is missing, unreadable, for other
weights, from another export format, or whose file hash no longer matches is not trusted: the
model is exported again. A new checkpoint has a new hash, hence a new folder.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sanchari_processes import __version__
from sanchari_processes.errors import InvalidInputError, ModelMissingError
from sanchari_processes.inference.checkpoint import (
    ModelMetadata,
    file_sha256,
    verified_weights,
)

#: Bump when the export itself changes, so caches of older exports are rebuilt.
EXPORT_FORMAT = 1
ONNX_OPSET = 17
INPUT_NAME, OUTPUT_NAME = "image", "logits"
FP32_NAME, INT8_NAME, RECORD_NAME = "model.onnx", "model-int8.onnx", "model.json"
#: Patches drawn from the calibration images to fit the int8 ranges.
CALIBRATION_PATCHES = 32


@dataclass(frozen=True)
class ExportRecord:
    """What ``model.json`` says about the files beside it."""

    weights_sha256: str
    files: dict[str, str]  # file name -> SHA-256
    export_format: int = EXPORT_FORMAT
    sanchari_version: str = __version__
    exporter: str = ""

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=2) + "\n"


def model_dir(cache_dir: Path, weights_sha256: str) -> Path:
    """Where the exports of one set of weights live."""
    return cache_dir / "models" / weights_sha256


def read_record(folder: Path, weights_sha256: str) -> ExportRecord | None:
    """The folder's record when it is readable, current and for these weights, else None."""
    try:
        raw = json.loads((folder / RECORD_NAME).read_text(encoding="utf-8"))
        record = ExportRecord(**raw)
    except (OSError, ValueError, TypeError):
        return None
    if record.export_format != EXPORT_FORMAT or record.weights_sha256 != weights_sha256:
        return None
    return record


def cached_file(folder: Path, weights_sha256: str, name: str) -> Path | None:
    """``folder/name`` when its record vouches for it and its bytes still hash the same."""
    record = read_record(folder, weights_sha256)
    path = folder / name
    if record is None or name not in record.files or not path.is_file():
        return None
    return path if file_sha256(path) == record.files[name] else None


def exported_model(
    weights: str | os.PathLike[str], cache_dir: Path | None, *, int8: bool = False
) -> Path:
    """The verified ONNX export of a checkpoint, exported now (needs torch) when not cached.

    The int8 model is built only by :func:`export_int8` (it needs calibration images).
    """
    path, metadata, sha = verified_weights(weights)
    folder = model_dir(_cache(cache_dir), sha)
    name = INT8_NAME if int8 else FP32_NAME
    found = cached_file(folder, sha, name)
    if found is not None:
        return found
    if int8:
        raise ModelMissingError(
            f"no int8 model of {path.name} in {folder.parent.parent}: build it with "
            f"`sanchari model-export --int8 --calibration IMAGES` (with --weights {path})"
        )
    return export_onnx(path, metadata, folder, sha)


def export_onnx(weights: Path, metadata: ModelMetadata, folder: Path, sha: str) -> Path:
    """Export the float32 network to ``folder/model.onnx`` (batch, height, width dynamic)."""
    import torch

    from sanchari_processes.inference.checkpoint import load_checkpoint

    loaded = load_checkpoint(weights, "cpu")
    size = 8 * loaded.metadata.architecture.size_multiple
    example = torch.zeros(1, metadata.architecture.in_channels, size, size)

    def write(tmp: Path) -> None:
        with warnings.catch_warnings(), torch.inference_mode():
            # The TorchScript exporter takes ~2 s; the dynamo one took minutes on this network.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                loaded.module,
                (example,),
                str(tmp),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={n: {0: "n", 2: "h", 3: "w"} for n in (INPUT_NAME, OUTPUT_NAME)},
                opset_version=ONNX_OPSET,
                dynamo=False,
            )

    return _store(folder, sha, FP32_NAME, write, f"torch {torch.__version__} (TorchScript)")


def export_int8(
    weights: str | os.PathLike[str],
    cache_dir: Path | None,
    calibration: Sequence[Path],
    *,
    patch_size: int = 512,
    seed: int = 0,
) -> Path:
    """Quantise the export to int8 (ONNX Runtime static QDQ) with patches of ``calibration``.

    Calibration patches are drawn (seeded) from the images, normalised like the model's input,
    so activation ranges come from real imagery: the training data is the intended source.
    """
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    fp32 = exported_model(weights, cache_dir)
    _, metadata, sha = verified_weights(weights)
    batches = calibration_patches(calibration, metadata, patch_size, seed)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter([{INPUT_NAME: b[None]} for b in batches])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._it, None)

    def write(tmp: Path) -> None:
        quantize_static(
            str(fp32),
            str(tmp),
            Reader(),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["Conv"],
        )

    import onnxruntime

    return _store(fp32.parent, sha, INT8_NAME, write, f"onnxruntime {onnxruntime.__version__}")


def calibration_patches(
    images: Sequence[Path], metadata: ModelMetadata, patch_size: int, seed: int
) -> list[np.ndarray]:
    """Up to :data:`CALIBRATION_PATCHES` normalised ``(C, p, p)`` crops of the images."""
    from sanchari_processes.inference.metadata import normalise
    from sanchari_processes.sources import open_raster

    if not images:
        raise InvalidInputError("int8 calibration needs at least one image")
    rng = np.random.default_rng(seed)
    per_image = max(1, -(-CALIBRATION_PATCHES // len(images)))
    patches: list[np.ndarray] = []
    for image in images:
        with open_raster(image, len(metadata.bands)) as source:
            chip = source.read(_whole(source))
        data = np.pad(
            chip.data,
            ((0, 0), (0, max(0, patch_size - chip.height)), (0, max(0, patch_size - chip.width))),
            mode="reflect",
        )
        for _ in range(per_image):
            r = int(rng.integers(0, data.shape[1] - patch_size + 1))
            c = int(rng.integers(0, data.shape[2] - patch_size + 1))
            crop = data[:, r : r + patch_size, c : c + patch_size]
            patches.append(normalise(crop, metadata))
    order = rng.permutation(len(patches))[:CALIBRATION_PATCHES]
    return [patches[i] for i in order]


def _whole(source: Any) -> Any:
    from rasterio.windows import Window

    return Window(0, 0, source.width, source.height)


def _cache(cache_dir: Path | None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    from sanchari_processes.settings import default_cache_dir

    return default_cache_dir()


def _store(folder: Path, sha: str, name: str, write: Callable[[Path], None], exporter: str) -> Path:
    """Write ``folder/name`` via a temporary file, then the record naming its hash (atomic)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        digest = file_sha256(tmp)
        tmp.chmod(0o644)  # mkstemp makes it private; the cache may serve several users
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    record = read_record(folder, sha)
    files = dict(record.files) if record else {}
    files = {k: v for k, v in files.items() if (folder / k).is_file() and k != name}
    files[name] = digest
    text = ExportRecord(weights_sha256=sha, files=files, exporter=exporter).to_json()
    fd, tmp_record = tempfile.mkstemp(dir=folder, prefix=f".{RECORD_NAME}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    Path(tmp_record).chmod(0o644)
    os.replace(tmp_record, folder / RECORD_NAME)
    return target


def clear_cache(cache_dir: Path, weights_sha256: str) -> None:
    """Remove one checkpoint's exports (tests; a user may also just delete the folder)."""
    shutil.rmtree(model_dir(cache_dir, weights_sha256), ignore_errors=True)
