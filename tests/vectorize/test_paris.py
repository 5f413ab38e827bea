"""Real data: a mask rasterised from OpenStreetMap roads over a Paris scene comes back as OSM.

Needs ``../shared/data/scenes`` (see ``../shared/README.md``); skipped without it. The
rasterising, degrading and scoring helpers live in ``benchmarks/check_paris_osm.py``, which
prints the same figures.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"


def _load_check() -> ModuleType:
    path = REPO / "benchmarks" / "check_paris_osm.py"
    spec = importlib.util.spec_from_file_location("check_paris_osm", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


check = _load_check()


@pytest.fixture(scope="module")
def scene() -> Any:
    missing = [name for name in (check.SCENE, check.ROADS) if not (SHARED / name).exists()]
    if missing:  # name what is missing: the scene ships in geotiffs/, its OSM lines do not
        pytest.skip(f"{', '.join(missing)} not found under {SHARED} (shared data is optional)")
    return check.load_scene(SHARED)


def _assert_matches_osm(result: Any) -> None:
    assert result.recall >= 0.95, result
    assert result.precision >= 0.97, result
    assert result.components <= result.osm_components + 2, result
    assert result.shortest_cycle_m >= 50.0, result


def test_clean_osm_mask_vectorizes_back_to_osm(scene: Any) -> None:
    result = check.score(scene, check.vectorize_mask(scene, check.road_mask(scene)))
    _assert_matches_osm(result)
    assert result.components == result.osm_components
    assert math.isinf(result.shortest_cycle_m)


@pytest.mark.parametrize("seed", [0, 1])
def test_degraded_osm_mask_still_vectorizes_to_osm(scene: Any, seed: int) -> None:
    mask = check.degrade_mask(scene, check.road_mask(scene), seed)
    _assert_matches_osm(check.score(scene, check.vectorize_mask(scene, mask)))


def test_output_is_in_lon_lat_over_the_scene(scene: Any) -> None:
    collection = check.vectorize_mask(scene, check.road_mask(scene))
    west, south, east, north = collection["bbox"]
    assert 2.28 < west < east < 2.284  # Paris, lon first
    assert 48.98 < south < north < 48.984
