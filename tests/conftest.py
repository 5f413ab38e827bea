"""Shared pytest fixtures.

Inference fixtures build a tiny random-weight U-Net++ (MobileNetV3-small x0.5 encoder, depth 3,
~0.29 M parameters, ~0.05 s per 512 px patch on 2 CPU cores) so model tests run in seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sanchari_processes.config import InferenceConfig
from sanchari_processes.inference.checkpoint import make_untrained_checkpoint
from sanchari_processes.inference.model import Architecture

#: Fixture modules shared by several test modules (registered here so pytest rewrites asserts).
pytest_plugins = [
    "tests.service_fixtures",
    "tests.cluster_fixtures",
    "tests.conformance_fixtures",
]

TINY_ARCHITECTURE = Architecture(
    encoder_name="tu-mobilenetv3_small_050", encoder_depth=3, decoder_channels=(16, 8, 4)
)


def save_tiny_checkpoint(
    path: Path,
    *,
    seed: int = 0,
    half: bool = False,
    architecture: Architecture = TINY_ARCHITECTURE,
    **meta: Any,
) -> Path:
    """Save a seeded random-weight model with test metadata; returns the .safetensors path."""
    fields: dict[str, Any] = {"model_id": "tiny-test", "gsd_m": 0.5, "threshold": 0.45}
    fields.update(meta)
    return make_untrained_checkpoint(path, architecture, seed=seed, half=half, **fields)


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Exported models and compiled code go to a session folder, never the user's cache."""
    folder = tmp_path_factory.mktemp("sanchari-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SANCHARI_CACHE_DIR", str(folder))
        yield folder


@pytest.fixture(scope="session")
def tiny_architecture() -> Architecture:
    return TINY_ARCHITECTURE


@pytest.fixture(scope="session")
def make_tiny_checkpoint() -> Callable[..., Path]:
    """The :func:`save_tiny_checkpoint` factory, for tests that need their own variants."""
    return save_tiny_checkpoint


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A shared tiny RGB checkpoint (read-only: copy it before damaging it)."""
    return save_tiny_checkpoint(tmp_path_factory.mktemp("tiny_model") / "tiny.safetensors")


@pytest.fixture(scope="session")
def inference_config() -> InferenceConfig:
    """Small patches so whole-image inference on the tiny model takes milliseconds."""
    return InferenceConfig(patch_size=64, stride=32, batch_size=4, tta="flip4", device="cpu")
