"""Ground sample distance is metres on the ground, whatever the CRS's units."""

from __future__ import annotations

import math

import pytest
from affine import Affine
from pyproj import CRS, Transformer

from sanchari_processes.chip import pixel_size_m

LON, LAT = 2.2821, 48.9819  # the Paris demo scene
GROUND_M = 0.3


def _grid(crs: str) -> Affine:
    """A north-up grid at ~GROUND_M ground metres per pixel centred on (LON, LAT) in ``crs``."""
    target = CRS.from_user_input(crs)
    x, y = Transformer.from_crs("EPSG:4326", target, always_xy=True).transform(LON, LAT)
    if target.is_geographic:
        dy = GROUND_M / 111_200.0
        dx = dy / math.cos(math.radians(LAT))
    elif target.to_epsg() == 3857:
        dx = dy = GROUND_M / math.cos(math.radians(LAT))  # Mercator's scale 1/cos(lat)
    else:
        dx = dy = GROUND_M / 0.9996 * 1.0  # near enough UTM's scale for the zone's middle
    return Affine(dx, 0, x - 50 * dx, 0, -dy, y + 50 * dy)


@pytest.mark.parametrize("crs", ["EPSG:4326", "EPSG:32631", "EPSG:3857"])
def test_pixel_size_is_ground_metres_in_any_crs(crs: str) -> None:
    assert pixel_size_m(_grid(crs), CRS.from_user_input(crs), (100, 100)) == pytest.approx(
        GROUND_M, rel=0.01
    )


def test_web_mercator_is_not_measured_in_its_own_units() -> None:
    # At 49° N one EPSG:3857 unit is cos(49°) = 0.66 ground metres: 1.52× too large otherwise.
    transform = _grid("EPSG:3857")
    assert transform.a == pytest.approx(0.457, rel=0.01)
    assert pixel_size_m(transform, CRS.from_epsg(3857), (100, 100)) < 0.31


def test_crs_without_datum_falls_back_to_its_linear_unit() -> None:
    local = CRS.from_wkt(
        'ENGCRS["local",EDATUM["site"],CS[Cartesian,2],'
        'AXIS["x",east,LENGTHUNIT["metre",1]],AXIS["y",north,LENGTHUNIT["metre",1]]]'
    )
    assert pixel_size_m(Affine(0.25, 0, 0, 0, -0.25, 0), local, (10, 10)) == pytest.approx(0.25)
