"""The exported network of a checkpoint: shipped beside it, or exported once into a cache.

A model folder may carry its network (``NAME.onnx``, ``NAME-int8.xml``/``.bin``), listed with
their SHA-256 in its JSON (:mod:`sanchari_processes.inference.shipped`): the CPU runtimes then
run without torch. ``sanchari model-export`` writes them. A checkpoint without one (a training
run's) is exported on first use when torch is installed, into
``CACHE/models/<weights sha256>/model.onnx`` with ``model.json`` recording the export: format,
the weights' and the file's SHA-256, the exporter. Files are written to a temporary name and
renamed, the record last, so a crash leaves no half-written model that looks finished; a record
that is missing, unreadable, for other weights, from another export format, or whose file hash
no longer matches is not trusted: the model is exported again. New weights, new hash, new folder.
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
from sanchari_processes.config import CALIBRATION_PATCHES
from sanchari_processes.errors import InvalidInputError, ModelMissingError
from sanchari_processes.inference import backends
from sanchari_processes.inference.checkpoint import (
    ModelMetadata,
    file_sha256,
    verified_weights,
)
from sanchari_processes.inference.shipped import record_export, shipped_export

#: Bump when the export itself changes, so caches of older exports are rebuilt.
EXPORT_FORMAT = 1
ONNX_OPSET = 17
INPUT_NAME, OUTPUT_NAME = "image", "logits"
FP32_NAME, RECORD_NAME = "model.onnx", "model.json"
_CONV = "Convolution"
#: The distribution name, for the extras an error message asks for.
_EXTRA = "sanchari-processes"


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
    weights: str | os.PathLike[str], cache_dir: Path | None, *, precision: str = "fp32"
) -> Path:
    """The verified exported network of a checkpoint for ``precision`` (``fp32`` or ``int8``).

    First the export the model folder carries (listed in its JSON, hashed on every use), then
    this cache; a float network missing from both is exported now into the cache, which needs
    torch (the ``train`` extra). The int8 network is built only by :func:`export_int8`.
    """
    path, metadata, sha = verified_weights(weights)
    shipped = shipped_export(path, metadata, precision)
    if shipped is not None:
        return shipped
    if precision == "int8":
        raise ModelMissingError(
            f"{path.name} has no int8 network: build it with `sanchari model-export "
            f"{path} --precision int8 --calibration IMAGES` (pip install '{_EXTRA}[int8]')"
        )
    folder = model_dir(_cache(cache_dir), sha)
    found = cached_file(folder, sha, FP32_NAME)
    if found is not None:
        return found
    if not backends.installed("torch"):
        raise ModelMissingError(
            f"{path.name} carries no exported network and exporting one needs torch: "
            f"pip install '{_EXTRA}[train]', then `sanchari model-export {path}` "
            "(or use a model folder that lists one in its JSON)"
        )
    return _store(folder, sha, FP32_NAME, lambda tmp: write_onnx(path, tmp), _torch_exporter())


def write_onnx(weights: Path, target: Path) -> None:
    """Export the float32 network to ``target`` (ONNX; batch, height, width dynamic)."""
    import torch

    from sanchari_processes.inference.checkpoint import load_checkpoint

    loaded = load_checkpoint(weights, "cpu")
    size = 8 * loaded.metadata.architecture.size_multiple
    example = torch.zeros(1, loaded.metadata.architecture.in_channels, size, size)
    with warnings.catch_warnings(), torch.inference_mode():
        # The TorchScript exporter takes ~2 s; the dynamo one took minutes on this network.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            loaded.module,
            (example,),
            str(target),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={n: {0: "n", 2: "h", 3: "w"} for n in (INPUT_NAME, OUTPUT_NAME)},
            opset_version=ONNX_OPSET,
            dynamo=False,
        )


def _torch_exporter() -> str:
    import torch

    return f"torch {torch.__version__} (TorchScript)"


def export_beside(weights: str | os.PathLike[str]) -> Path:
    """Write the float32 network beside the weights as ``NAME.onnx`` and list it in the JSON
    (``sanchari model-export``; adaptation does it for the models it writes). Needs torch."""
    path, _, _ = verified_weights(weights)
    target = path.with_suffix(".onnx")
    _atomic_file(target, lambda tmp: write_onnx(path, tmp))
    record_export(path, "fp32", "onnx", [target])
    return target


def export_int8(
    weights: str | os.PathLike[str],
    cache_dir: Path | None,
    calibration: Sequence[Path],
    *,
    patch_size: int = 512,
    patches: int = CALIBRATION_PATCHES,
    seed: int = 0,
) -> Path:
    """Quantise the network to int8 with NNCF, writing ``NAME-int8.xml``/``.bin`` (OpenVINO IR)
    beside the weights and listing them in the JSON.

    Calibration patches are drawn (seeded) from the images, normalised like the model's input,
    so activation ranges come from real imagery: training images, never held-out ones.
    """
    import nncf
    import openvino as ov

    path, metadata, _ = verified_weights(weights)
    fp32 = exported_model(path, cache_dir)
    batches = calibration_patches(calibration, metadata, patch_size, seed, patches)
    model = ov.Core().read_model(str(fp32))
    convs = [
        op.get_friendly_name() for op in model.get_ordered_ops() if op.get_type_name() == _CONV
    ]
    quantized = nncf.quantize(
        model,
        nncf.Dataset([b[None] for b in batches]),
        subset_size=len(batches),
        # asymmetric activations (MIXED): the decoder's activations are not centred on zero
        preset=nncf.QuantizationPreset.MIXED,
        # the first and last convolutions stay float: the input's and the logits' ranges
        ignored_scope=nncf.IgnoredScope(names=[convs[0], convs[-1]]) if convs else None,
    )
    xml = path.with_name(f"{path.stem}-int8.xml")
    bin_ = xml.with_suffix(".bin")
    staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=".int8-"))
    try:
        ov.save_model(quantized, str(staging / xml.name), compress_to_fp16=False)
        for f in (xml, bin_):
            (staging / f.name).chmod(0o644)
            os.replace(staging / f.name, f)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    record_export(path, "int8", "openvino", [xml, bin_])
    return xml


def calibration_patches(
    images: Sequence[Path],
    metadata: ModelMetadata,
    patch_size: int,
    seed: int,
    count: int = CALIBRATION_PATCHES,
) -> list[np.ndarray]:
    """``count`` normalised ``(C, p, p)`` crops spread evenly over the images (seeded)."""
    from sanchari_processes.inference.metadata import normalise
    from sanchari_processes.sources import open_raster

    if not images:
        raise InvalidInputError("int8 calibration needs at least one image")
    rng = np.random.default_rng(seed)
    per_image = max(1, -(-count // len(images)))
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
    order = rng.permutation(len(patches))[:count]
    return [patches[i] for i in order]


def _whole(source: Any) -> Any:
    from rasterio.windows import Window

    return Window(0, 0, source.width, source.height)


def _cache(cache_dir: Path | None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    from sanchari_processes.settings import default_cache_dir

    return default_cache_dir()


def _atomic_file(target: Path, write: Callable[[Path], None]) -> str:
    """``write`` a temporary file beside ``target``, then rename it over; returns its SHA-256."""
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        digest = file_sha256(tmp)
        tmp.chmod(0o644)  # mkstemp makes it private; the cache may serve several users
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return digest


def _store(folder: Path, sha: str, name: str, write: Callable[[Path], None], exporter: str) -> Path:
    """Write ``folder/name`` via a temporary file, then the record naming its hash (atomic)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    digest = _atomic_file(target, write)
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
