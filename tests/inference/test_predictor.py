"""Predictor: whole-image probabilities from raw pixels, with no-data handling."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from sanchari_processes.config import InferenceConfig
from sanchari_processes.engine.build import (
    EngineOptions,
    build_predictor,
    clear_runner_cache,
    torch_predictor,
)
from sanchari_processes.errors import InvalidInputError
from sanchari_processes.inference.checkpoint import LoadedModel, load_checkpoint
from sanchari_processes.inference.metadata import normalise
from sanchari_processes.inference.nodata import shrink_valid
from sanchari_processes.inference.predictor import Predictor


@pytest.fixture(scope="module")
def loaded(tiny_checkpoint: Path) -> LoadedModel:
    return load_checkpoint(tiny_checkpoint, "cpu")


@pytest.fixture(scope="module")
def predictor(loaded: LoadedModel, inference_config: InferenceConfig) -> Predictor:
    return torch_predictor(loaded, inference_config)


def _image(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (3, height, width), dtype=np.uint8)


@pytest.mark.parametrize("size", [(50, 70), (64, 64), (130, 97)])
def test_output_shape_dtype_and_range(predictor: Predictor, size: tuple[int, int]) -> None:
    prob = predictor.predict(_image(*size))
    assert prob.shape == size and prob.dtype == np.float32
    assert prob.min() >= 0.0 and prob.max() <= 1.0
    assert np.isfinite(prob).all()


def test_single_patch_equals_direct_model(loaded: LoadedModel) -> None:
    config = InferenceConfig(patch_size=64, stride=64, tta="none", device="cpu", edge_margin=0)
    image = _image(64, 64, seed=2)
    x = torch.from_numpy(normalise(image, loaded.metadata))[None]
    with torch.inference_mode():
        expected = torch.sigmoid(loaded.module(x))[0, 0].numpy()
    np.testing.assert_allclose(torch_predictor(loaded, config).predict(image), expected, atol=1e-6)


def test_normalise_uses_metadata(loaded: LoadedModel) -> None:
    image = np.full((3, 2, 2), 255, np.uint8)
    x = normalise(image, loaded.metadata)
    expected = (1.0 - np.array(loaded.metadata.mean)) / np.array(loaded.metadata.std)
    assert x.dtype == np.float32
    np.testing.assert_allclose(x[:, 0, 0], expected, rtol=1e-6)


def test_invalid_pixels_are_zero_and_do_not_leak(predictor: Predictor) -> None:
    valid = np.ones((80, 90), bool)
    valid[:, 60:] = False
    valid[10:20, 5:15] = False
    a, b = _image(80, 90, seed=3), _image(80, 90, seed=3)
    b[:, ~valid] = _image(80, 90, seed=4)[:, ~valid]  # different garbage under the no-data
    prob_a = predictor.predict(a, valid)
    # no-data and a margin around it get 0; everything farther away is predicted
    kept = shrink_valid(valid, predictor.config.nodata_margin_m / predictor.metadata.gsd_m)
    assert kept.sum() > 0.5 * valid.sum()
    assert (prob_a[~kept] == 0).all() and (prob_a[kept] > 0).all()
    np.testing.assert_array_equal(prob_a, predictor.predict(b, valid))


def test_patches_without_a_valid_pixel_skip_the_model(loaded: LoadedModel) -> None:
    """Each patch the runner sees holds valid pixels; the output equals a run over them all."""
    config = InferenceConfig(patch_size=64, stride=32, tta="none", device="cpu", edge_margin=0)
    seen: list[np.ndarray] = []
    predictor = torch_predictor(loaded, config)
    runner = predictor.runner

    class Counting:
        name, device, batch_views = runner.name, runner.device, runner.batch_views

        def __call__(self, batch: np.ndarray) -> np.ndarray:
            seen.append(batch)
            return runner(batch)

    counted = Predictor(Counting(), loaded.metadata, predictor.config)
    image = _image(64, 192, seed=5)
    valid = np.ones((64, 192), bool)
    valid[:, 100:] = False  # patches at x = 128 (128..192) hold no valid pixel
    prob = counted.predict(image, valid)
    assert counted.skipped == 1 and sum(len(b) for b in seen) == 4
    assert all(b.shape[1] == 3 for b in seen)  # the valid channel never reaches the runner
    np.testing.assert_allclose(prob, predictor.predict(image, valid), atol=1e-6)
    assert counted.first_result is not None


def test_non_finite_pixels_count_as_invalid(predictor: Predictor) -> None:
    image = _image(40, 40).astype(np.float32)
    image[1, 5:9, 5:9] = np.nan
    prob = predictor.predict(image)
    assert (prob[5:9, 5:9] == 0).all() and np.isfinite(prob).all()


def test_wrong_band_count(predictor: Predictor) -> None:
    with pytest.raises(InvalidInputError, match=r"3 bands \(red, green, blue\)"):
        predictor.predict(np.zeros((4, 32, 32), np.uint8))
    with pytest.raises(InvalidInputError, match="3 bands"):
        predictor.predict(np.zeros((32, 32), np.uint8))


def test_bad_valid_mask(predictor: Predictor) -> None:
    with pytest.raises(InvalidInputError, match="boolean"):
        predictor.predict(_image(32, 32), np.ones((32, 31), bool))
    with pytest.raises(InvalidInputError, match="boolean"):
        predictor.predict(_image(32, 32), np.ones((32, 32), np.uint8))


def test_patch_size_must_suit_model(loaded: LoadedModel) -> None:
    with pytest.raises(InvalidInputError, match="multiple of 8"):
        torch_predictor(loaded, InferenceConfig(patch_size=60, stride=30))


@pytest.mark.parametrize("tta", ["none", "d4"])
def test_tta_modes_run(loaded: LoadedModel, inference_config: InferenceConfig, tta: str) -> None:
    prob = torch_predictor(loaded, replace(inference_config, tta=tta)).predict(_image(48, 56))
    assert prob.shape == (48, 56) and prob.min() >= 0 and prob.max() <= 1


def test_progress_and_metadata(predictor: Predictor, loaded: LoadedModel) -> None:
    calls: list[tuple[int, int]] = []
    predictor.predict(_image(64, 64), progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (1, 1)  # 64 px at 64/32 with no reflected margin: one patch
    assert predictor.metadata is loaded.metadata
    assert predictor.metadata.threshold == 0.45


def test_build_predictor_shares_cached_runner(
    tiny_checkpoint: Path, inference_config: InferenceConfig, tmp_path: Path
) -> None:
    clear_runner_cache()
    options = EngineOptions(tiny_checkpoint, replace(inference_config, backend="torch"))
    a = build_predictor(options)
    b = build_predictor(replace(options, weights=tiny_checkpoint.parent))
    assert a.runner is b.runner and a.runner.name == "torch"
    assert a.config.batch_size == inference_config.batch_size and a.config.device == "cpu"
    clear_runner_cache()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_float16_matches_cpu(tiny_checkpoint: Path, inference_config: InferenceConfig) -> None:
    image = _image(96, 80, seed=5)
    cpu = torch_predictor(load_checkpoint(tiny_checkpoint, "cpu"), inference_config).predict(image)
    gpu = torch_predictor(load_checkpoint(tiny_checkpoint, "cuda"), inference_config).predict(image)
    np.testing.assert_allclose(gpu, cpu, atol=1e-2)
