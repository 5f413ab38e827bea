"""Checkpoint format: round trips, strict validation with one-line errors, per-process cache."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import torch

from sanchari_processes import __version__
from sanchari_processes.errors import InvalidInputError, ModelMissingError
from sanchari_processes.inference.checkpoint import (
    ModelMetadata,
    clear_model_cache,
    file_sha256,
    load_checkpoint,
    load_model_cached,
    make_untrained_checkpoint,
    read_metadata,
    resolve_device,
    save_checkpoint,
)
from sanchari_processes.inference.model import Architecture, build_model

MakeCheckpoint = Callable[..., Path]


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    clear_model_cache()


@pytest.fixture
def ckpt(tiny_checkpoint: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny checkpoint that a test may damage."""
    for suffix in (".safetensors", ".json"):
        shutil.copy(tiny_checkpoint.with_suffix(suffix), tmp_path / f"m{suffix}")
    return tmp_path / "m.safetensors"


def _edit_json(weights: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    meta = weights.with_suffix(".json")
    data = json.loads(meta.read_text())
    edit(data)
    meta.write_text(json.dumps(data))


def _load_error(path: Path) -> str:
    with pytest.raises(ModelMissingError) as info:
        load_checkpoint(path, "cpu")
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def _output(model: torch.nn.Module) -> torch.Tensor:
    x = torch.randn(2, 3, 32, 48, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        return model.eval()(x)


def test_round_trip_fp32_is_identical(tmp_path: Path, tiny_architecture: Architecture) -> None:
    torch.manual_seed(5)
    model = build_model(tiny_architecture)
    meta = ModelMetadata(model_id="rt", architecture=tiny_architecture, gsd_m=0.3)
    path = save_checkpoint(model, meta, tmp_path / "rt")  # bare stem is accepted
    assert path == tmp_path / "rt.safetensors" and path.with_suffix(".json").is_file()
    loaded = load_checkpoint(path, "cpu")
    assert torch.equal(_output(loaded.module), _output(model))
    assert not loaded.module.training
    assert not any(p.requires_grad for p in loaded.module.parameters())
    assert loaded.device == torch.device("cpu") and loaded.path == path
    assert loaded.metadata == replace(meta, weights_sha256=file_sha256(path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rt.json", "rt.safetensors"]


def test_round_trip_half_restores_float32(tmp_path: Path, tiny_architecture: Architecture) -> None:
    torch.manual_seed(6)
    model = build_model(tiny_architecture)
    meta = ModelMetadata(model_id="half", architecture=tiny_architecture)
    full = save_checkpoint(model, meta, tmp_path / "full.safetensors")
    half = save_checkpoint(model, meta, tmp_path / "half.safetensors", half=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    loaded = load_checkpoint(half, "cpu")
    assert all(p.dtype == torch.float32 for p in loaded.module.parameters())
    rounded = build_model(tiny_architecture)
    rounded.load_state_dict(model.state_dict())
    rounded.half().float()  # what float16 storage does to the weights
    assert torch.equal(_output(loaded.module), _output(rounded))
    assert torch.allclose(_output(loaded.module), _output(model), atol=5e-2)


def test_metadata_json_contents(tiny_checkpoint: Path) -> None:
    data = json.loads(tiny_checkpoint.with_suffix(".json").read_text())
    assert data["format_version"] == 1
    assert data["weights_sha256"] == file_sha256(tiny_checkpoint)
    assert data["mean"] == [0.485, 0.456, 0.406] and data["std"] == [0.229, 0.224, 0.225]
    assert data["input_scale"] == 255.0 and data["bands"] == ["red", "green", "blue"]
    assert data["sanchari_version"] == __version__
    assert datetime.fromisoformat(data["created"]).tzinfo is not None
    assert data["architecture"]["encoder_name"] == "tu-mobilenetv3_small_050"


def test_path_forms(ckpt: Path) -> None:
    for form in (ckpt, ckpt.with_suffix(".json"), ckpt.parent, str(ckpt)):
        assert read_metadata(form).model_id == "tiny-test"
    assert load_checkpoint(ckpt.parent, "cpu").path == ckpt


def test_directory_needs_exactly_one_checkpoint(ckpt: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "holds no *.safetensors" in _load_error(empty)
    shutil.copy(ckpt, tmp_path / "other.safetensors")
    assert "holds 2 *.safetensors" in _load_error(tmp_path)


@pytest.mark.parametrize("suffix", [".safetensors", ".json"])
def test_missing_file(ckpt: Path, suffix: str) -> None:
    ckpt.with_suffix(suffix).unlink()
    message = _load_error(ckpt)
    assert message == f"{ckpt.with_suffix(suffix)}: file not found"


def test_not_a_checkpoint_path(tmp_path: Path) -> None:
    assert "not a checkpoint" in _load_error(tmp_path / "model.pt")


def test_corrupt_json(ckpt: Path) -> None:
    ckpt.with_suffix(".json").write_text('{"model_id": "x",')
    message = _load_error(ckpt)
    assert message.startswith(f"{ckpt.with_suffix('.json')}: not valid JSON")


def test_json_not_an_object(ckpt: Path) -> None:
    ckpt.with_suffix(".json").write_text("[1, 2]")
    assert "metadata must be a JSON object" in _load_error(ckpt)


def test_missing_field(ckpt: Path) -> None:
    _edit_json(ckpt, lambda d: d.pop("gsd_m"))
    assert "missing required field(s): gsd_m" in _load_error(ckpt)


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("gsd_m", 0, "gsd_m must be positive"),
        ("gsd_m", "0.5", "'gsd_m' must be a number"),
        ("threshold", 1.5, "threshold must be within 0..1"),
        ("mean", [0.5, 0.5], "bands, mean and std must each have in_channels=3"),
        ("bands", "rgb", "'bands' must be a list of strings"),
        ("std", [0.2, 0.0, 0.2], "std must be positive"),
        ("input_scale", -1, "input_scale must be positive"),
        ("format_version", 2, "format_version 2 is not supported"),
        ("format_version", True, "'format_version' must be an integer"),
        ("model_id", "", "model_id must be a non-empty string"),
        ("treshold", 0.5, "unknown field(s): treshold"),
        ("weights_sha256", "abc", "64 lowercase hex"),
        ("architecture", {"encoder_name": "nope-encoder"}, "cannot build UnetPlusPlus"),
        ("architecture", {"encoder_name": "resnet18", "depth": 3}, "unknown keys: depth"),
    ],
)
def test_bad_values(ckpt: Path, key: str, value: Any, problem: str) -> None:
    _edit_json(ckpt, lambda d: d.update({key: value}))
    message = _load_error(ckpt)
    assert problem in message
    assert str(ckpt.parent) in message


def test_sha_mismatch(ckpt: Path) -> None:
    data = bytearray(ckpt.read_bytes())
    data[-1] ^= 0xFF
    ckpt.write_bytes(bytes(data))
    message = _load_error(ckpt)
    assert message.startswith(f"{ckpt}: SHA-256") and "does not match metadata" in message


def test_unreadable_safetensors(ckpt: Path) -> None:
    ckpt.write_bytes(b"not a safetensors file")
    _edit_json(ckpt, lambda d: d.update(weights_sha256=file_sha256(ckpt)))
    assert "not a readable safetensors file" in _load_error(ckpt)


def test_shape_mismatched_weights(
    tmp_path: Path, make_tiny_checkpoint: MakeCheckpoint, tiny_architecture: Architecture
) -> None:
    wider = Architecture(
        encoder_name=tiny_architecture.encoder_name, encoder_depth=3, decoder_channels=(32, 8, 4)
    )
    path = make_tiny_checkpoint(tmp_path / "w.safetensors", architecture=wider)
    _edit_json(path, lambda d: d.update(architecture=tiny_architecture.to_dict()))
    message = _load_error(path)
    assert "weights do not match architecture" in message and "shape mismatch" in message


def test_missing_keys(tmp_path: Path, make_tiny_checkpoint: MakeCheckpoint) -> None:
    deeper = Architecture(
        encoder_name="tu-mobilenetv3_small_050", encoder_depth=4, decoder_channels=(32, 16, 8, 4)
    )
    path = make_tiny_checkpoint(tmp_path / "d.safetensors")
    _edit_json(path, lambda d: d.update(architecture=deeper.to_dict()))
    assert "missing key(s)" in _load_error(path)


def test_save_rejects_model_not_matching_architecture(
    tmp_path: Path, tiny_architecture: Architecture
) -> None:
    other = Architecture(encoder_name="resnet18", encoder_depth=3, decoder_channels=(16, 8, 4))
    meta = ModelMetadata(model_id="x", architecture=tiny_architecture)
    with pytest.raises(InvalidInputError, match=r"does not match metadata\.architecture"):
        save_checkpoint(build_model(other), meta, tmp_path / "x.safetensors")
    assert list(tmp_path.iterdir()) == []


def test_metadata_validates_on_construction(tiny_architecture: Architecture) -> None:
    with pytest.raises(InvalidInputError, match="bands, mean and std"):
        ModelMetadata(model_id="x", architecture=tiny_architecture, bands=("red", "nir"))


def test_cache_returns_same_object_until_file_changes(
    ckpt: Path, make_tiny_checkpoint: MakeCheckpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    first = load_model_cached(ckpt, "cpu")
    assert load_model_cached(ckpt.with_suffix(".json"), torch.device("cpu")) is first
    assert load_model_cached(ckpt.parent, "auto") is first

    stat = ckpt.stat()
    os.utime(ckpt, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    touched = load_model_cached(ckpt, "cpu")
    assert touched is not first and load_model_cached(ckpt, "cpu") is touched

    make_tiny_checkpoint(ckpt, seed=1)  # replace the weights in place
    replaced = load_model_cached(ckpt, "cpu")
    assert replaced is not touched
    assert not torch.equal(_output(replaced.module), _output(touched.module))

    clear_model_cache()
    assert load_model_cached(ckpt, "cpu") is not replaced


def test_resolve_device(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(InvalidInputError) as info:
        resolve_device("cuda")
    assert info.value.message == "CUDA requested but no CUDA device is available"
    with pytest.raises(InvalidInputError, match="unknown device"):
        resolve_device("tpu")


def test_cuda_request_without_cuda_is_invalid_input(
    ckpt: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(InvalidInputError, match="CUDA requested"):
        load_model_cached(ckpt, "cuda")


def test_make_untrained_checkpoint_from_preset(tmp_path: Path) -> None:
    rng_state = torch.random.get_rng_state()
    path = make_untrained_checkpoint(tmp_path / "u", "lite0", gsd_m=0.3, seed=2, half=True)
    assert torch.equal(torch.random.get_rng_state(), rng_state)  # global RNG untouched
    meta = read_metadata(path)
    assert meta.preset == "lite0" and meta.model_id == "untrained-lite0"
    assert meta.metrics == {"untrained": True} and meta.gsd_m == 0.3
    assert meta.architecture.encoder_name == "tu-tf_efficientnet_lite0"
    with pytest.raises(InvalidInputError, match="unknown model preset"):
        make_untrained_checkpoint(tmp_path / "v", "v9")
