"""Fixtures of the command-line tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.synthetic import road_image, write_geotiff


@pytest.fixture
def utm_tif(tmp_path: Path) -> Path:
    return write_geotiff(tmp_path / "scene.tif", road_image(96, 128))
