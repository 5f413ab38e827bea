"""The export cache: built once per checkpoint, verified on every use, rebuilt when not sound."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from sanchari_processes.config import InferenceConfig
from sanchari_processes.engine.build import EngineOptions, build_predictor, clear_runner_cache
from sanchari_processes.errors import ModelMissingError
from sanchari_processes.inference import backends
from sanchari_processes.inference.checkpoint import (
    file_sha256,
    load_checkpoint,
    read_metadata,
    save_checkpoint,
)
from sanchari_processes.inference.export import (
    FP32_NAME,
    RECORD_NAME,
    export_beside,
    export_int8,
    exported_model,
    model_dir,
)
from sanchari_processes.inference.shipped import copy_exports

pytestmark = pytest.mark.skipif(
    not backends.installed("onnxruntime"), reason="the export checks use onnxruntime"
)


@pytest.fixture
def checkpoint(tiny_checkpoint: Path, tmp_path: Path) -> Path:
    """A private copy (tests here damage files)."""
    for suffix in (".safetensors", ".json"):
        shutil.copy(tiny_checkpoint.with_suffix(suffix), tmp_path / f"tiny{suffix}")
    return tmp_path / "tiny.safetensors"


def _sha(checkpoint: Path) -> str:
    return read_metadata(checkpoint).weights_sha256


def test_export_is_cached_by_weights_sha256_and_reused(checkpoint: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    path = exported_model(checkpoint, cache)
    assert path == model_dir(cache, _sha(checkpoint)) / FP32_NAME
    record = json.loads((path.parent / RECORD_NAME).read_text())
    assert record["weights_sha256"] == _sha(checkpoint) and FP32_NAME in record["files"]
    mtime = path.stat().st_mtime_ns
    assert exported_model(checkpoint.parent, cache) == path
    assert path.stat().st_mtime_ns == mtime  # verified and reused, not exported again
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("damage", ["truncate", "record", "other-weights", "old-format"])
def test_unsound_cache_is_rebuilt_not_trusted(
    checkpoint: Path, tmp_path: Path, damage: str
) -> None:
    cache = tmp_path / "cache"
    path = exported_model(checkpoint, cache)
    good = path.read_bytes()
    record_path = path.parent / RECORD_NAME
    record = json.loads(record_path.read_text())
    if damage == "truncate":
        path.write_bytes(good[: len(good) // 2])
    elif damage == "record":
        record_path.write_text("{not json")
    elif damage == "other-weights":
        record["weights_sha256"] = "0" * 64
        record_path.write_text(json.dumps(record))
    else:
        record["export_format"] = 0
        record_path.write_text(json.dumps(record))
    os.utime(path, ns=(1, 1))
    assert exported_model(checkpoint, cache) == path
    assert path.stat().st_mtime_ns != 1  # exported again
    assert json.loads(record_path.read_text())["files"][FP32_NAME]


def test_replaced_weights_are_refused(checkpoint: Path, tmp_path: Path) -> None:
    data = bytearray(checkpoint.read_bytes())
    data[-1] ^= 0xFF
    checkpoint.write_bytes(bytes(data))
    with pytest.raises(ModelMissingError, match="does not match metadata"):
        exported_model(checkpoint, tmp_path / "cache")


def test_int8_must_be_built_with_calibration_first(checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelMissingError, match="--precision int8 --calibration"):
        exported_model(checkpoint, tmp_path / "cache", precision="int8")


def test_the_network_beside_the_weights_is_used_and_verified(
    checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    onnx = export_beside(checkpoint)
    assert onnx == checkpoint.with_suffix(".onnx")
    entry = read_metadata(checkpoint).exports["fp32"]
    assert entry == {"format": "onnx", "files": {onnx.name: file_sha256(onnx)}}
    monkeypatch.setattr(backends, "installed", lambda name: name != "torch")
    cache = tmp_path / "cache"
    assert exported_model(checkpoint, cache) == onnx  # no torch needed, nothing cached
    assert not cache.exists()
    data = bytearray(onnx.read_bytes())
    data[len(data) // 2] ^= 0xFF
    onnx.write_bytes(bytes(data))
    with pytest.raises(ModelMissingError, match="does not match the model's exports"):
        exported_model(checkpoint, cache)
    onnx.unlink()
    with pytest.raises(ModelMissingError, match="file not found"):
        exported_model(checkpoint, cache)


def test_without_an_export_or_torch_the_error_names_the_extra(
    checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backends, "installed", lambda name: name != "torch")
    with pytest.raises(ModelMissingError, match=r"sanchari-processes\[train\]"):
        exported_model(checkpoint, tmp_path / "cache")


def test_new_weights_drop_the_exports_of_the_old(checkpoint: Path, tmp_path: Path) -> None:
    export_beside(checkpoint)
    loaded = load_checkpoint(checkpoint, "cpu")
    assert loaded.metadata.exports
    saved = save_checkpoint(loaded.module, loaded.metadata, tmp_path / "new" / "m")
    assert read_metadata(saved).exports == {}


def test_a_recalibrated_copy_carries_the_exports_renamed(checkpoint: Path, tmp_path: Path) -> None:
    export_beside(checkpoint)
    folder = tmp_path / "copy"
    folder.mkdir()
    copied = copy_exports(checkpoint, read_metadata(checkpoint), folder, "other")
    assert list(copied.exports["fp32"]["files"]) == ["other.onnx"]
    assert (folder / "other.onnx").read_bytes() == checkpoint.with_suffix(".onnx").read_bytes()


@pytest.mark.skipif(not importlib.util.find_spec("nncf"), reason="int8 needs nncf")
def test_int8_export_from_calibration_images(checkpoint: Path, tmp_path: Path) -> None:
    from tests.synthetic import road_image, write_geotiff

    images = [write_geotiff(tmp_path / f"c{i}.tif", road_image(80, 70 + i)) for i in range(2)]
    cache = tmp_path / "cache"
    path = export_int8(checkpoint, cache, images, patch_size=64, patches=6)
    assert path == checkpoint.with_name("tiny-int8.xml")
    assert exported_model(checkpoint, cache, precision="int8") == path
    files = read_metadata(checkpoint).exports["int8"]["files"]
    assert list(files) == ["tiny-int8.xml", "tiny-int8.bin"]
    assert files["tiny-int8.bin"] == file_sha256(path.with_suffix(".bin"))
    config = InferenceConfig(patch_size=64, tta="none", device="cpu", precision="int8")
    predictor = build_predictor(EngineOptions(checkpoint, config, cache_dir=cache))
    assert predictor.runner.name == "openvino" and predictor.runner.arithmetic == "int8"
    prob = predictor.predict(road_image(80, 70))
    assert prob.shape == (80, 70) and np.isfinite(prob).all()
    auto = replace(config, precision="auto", backend="openvino")  # the default takes int8
    predictor = build_predictor(EngineOptions(checkpoint, auto, cache_dir=cache))
    assert predictor.runner.arithmetic == "int8" and predictor.config.precision == "auto"
    assert np.array_equal(predictor.predict(road_image(80, 70)), prob)
    clear_runner_cache()
