"""The export cache: built once per checkpoint, verified on every use, rebuilt when not sound."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from sanchari_processes.errors import ModelMissingError
from sanchari_processes.inference import backends
from sanchari_processes.inference.checkpoint import read_metadata
from sanchari_processes.inference.export import (
    FP32_NAME,
    RECORD_NAME,
    export_int8,
    exported_model,
    model_dir,
)

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
    with pytest.raises(ModelMissingError, match="model-export --int8 --calibration"):
        exported_model(checkpoint, tmp_path / "cache", int8=True)


def test_int8_export_from_calibration_images(checkpoint: Path, tmp_path: Path) -> None:
    from tests.synthetic import road_image, write_geotiff

    images = [write_geotiff(tmp_path / f"c{i}.tif", road_image(80, 70 + i)) for i in range(2)]
    cache = tmp_path / "cache"
    path = export_int8(checkpoint, cache, images, patch_size=64)
    assert exported_model(checkpoint, cache, int8=True) == path
    record = json.loads((path.parent / RECORD_NAME).read_text())
    assert set(record["files"]) == {FP32_NAME, path.name}
