"""One real Earth Engine request (``-m live``; skipped without credentials)."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest
import rasterio

from sanchari_processes.errors import CredentialsError
from sanchari_processes.sources import gee

pytestmark = pytest.mark.live


def test_real_naip_chip_is_on_the_grid_we_asked_for(tmp_path: Path) -> None:
    settings = gee.GeeSettings.from_env(os.environ)
    try:
        gee.resolve_credentials(settings)
    except CredentialsError as exc:
        pytest.skip(f"no Earth Engine credentials here ({exc.message.split(';')[0]})")
    plan = gee.plan_gee(
        -105.2705,
        40.0150,  # Boulder, Colorado
        collection=gee.NAIP,
        scale_m=1.0,
        window_px=256,
        start=None,
        end=None,
        today=date.today(),
        max_pixels=256 * 256,
        settings=settings,
    )
    fetched = gee.fetch_gee(plan, gee.connect(settings), tmp_path)
    assert fetched.imagery["images"]
    assert all(i["id"].startswith("USDA/NAIP/DOQQ/") for i in fetched.imagery["images"])
    with rasterio.open(fetched.path) as ds:
        assert ds.crs.to_epsg() == 32613 and ds.transform == plan.grid.transform
        assert ds.read_masks(1).mean() > 250  # NAIP covers Boulder
        assert ds.read(1).std() > 5  # real imagery, not a flat fill
