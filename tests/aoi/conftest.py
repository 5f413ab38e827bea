"""Fixtures of the AOI tests: the four scenes, the AOI and the shipped model on the CPU."""

from __future__ import annotations

from pathlib import Path

import pytest

from sanchari_processes.config import InferenceConfig
from sanchari_processes.engine.build import Engine, EngineOptions, build_engine
from sanchari_processes.settings import SHIPPED_WEIGHTS
from tests.aoi_fixtures import write_aoi, write_scenes


@pytest.fixture(scope="session")
def scenes_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("aoi") / "scenes"
    write_scenes(folder)
    return folder


@pytest.fixture(scope="session")
def aoi_file(scenes_dir: Path) -> Path:
    return write_aoi(scenes_dir.parent / "district.geojson")


@pytest.fixture(scope="session")
def shipped_options() -> EngineOptions:
    """The shipped model (it finds the synthetic road), torch on the CPU, no TTA, and 384 px
    patches overlapping by 32 px: one patch a block (a window of 288 px: 160 + 2 x 64), so a
    run of nine blocks takes seconds."""
    inference = InferenceConfig(
        tta="none", device="cpu", backend="torch", patch_size=384, stride=352
    )
    return EngineOptions(weights=SHIPPED_WEIGHTS, inference=inference)


@pytest.fixture(scope="session")
def shipped_engine(shipped_options: EngineOptions) -> Engine:
    return build_engine(shipped_options)
