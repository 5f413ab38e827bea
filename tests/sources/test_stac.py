"""STAC Items: the RGB asset chosen by roles and bands, relative hrefs, refusals."""

from __future__ import annotations

import pystac
import pytest

from sanchari_processes.errors import InvalidInputError
from sanchari_processes.sources.stac import choose_asset

COG = "image/tiff; application=geotiff; profile=cloud-optimized"
URL = "https://stac.example.org/collections/c/items/x"


def _item(assets: dict, version: str = "1.0.0") -> pystac.Item:
    data = {
        "type": "Feature",
        "stac_version": version,
        "stac_extensions": ["https://stac-extensions.github.io/eo/v1.1.0/schema.json"],
        "id": "x",
        "collection": "c",
        "geometry": None,
        "properties": {"datetime": "2024-01-02T00:00:00Z"},
        "links": [],
        "assets": assets,
    }
    return pystac.Item.from_dict(data)


def _bands(*names: str, key: str = "common_name") -> list[dict]:
    return [{"name": n, key: n} for n in names]


def test_visual_role_wins() -> None:
    item = _item(
        {
            "B04": {"href": "b4.tif", "type": COG, "roles": ["data"]},
            "rgb": {
                "href": "rgb.tif",
                "type": COG,
                "roles": ["data"],
                "eo:bands": _bands("red", "green", "blue"),
            },
            "visual": {"href": "https://cdn.example.org/tci.tif", "type": COG, "roles": ["visual"]},
        }
    )
    chosen = choose_asset(item, URL)
    assert chosen.href == "https://cdn.example.org/tci.tif" and chosen.bands is None
    assert chosen.provenance["asset"] == "visual" and chosen.provenance["collection"] == "c"


def test_rgb_bands_are_read_in_rgb_order_and_hrefs_resolve() -> None:
    item = _item(
        {
            "thumbnail": {"href": "t.png", "type": "image/png", "roles": ["thumbnail"]},
            "analytic": {
                "href": "../../files/x.tif",
                "type": COG,
                "roles": ["data"],
                "eo:bands": _bands("blue", "green", "red", "nir"),
            },
        }
    )
    chosen = choose_asset(item, URL)
    assert chosen.bands == (3, 2, 1)
    assert chosen.href == "https://stac.example.org/collections/files/x.tif"


def test_stac_1_1_bands() -> None:
    bands = _bands("red", "green", "blue", key="eo:common_name")
    item = _item({"data": {"href": "d.tif", "type": COG, "bands": bands}}, version="1.1.0")
    assert choose_asset(item, URL).bands == (1, 2, 3)


@pytest.mark.parametrize(
    "assets",
    [
        {"nir": {"href": "n.tif", "type": COG, "eo:bands": _bands("nir")}},
        {"visual": {"href": "v.png", "type": "image/png", "roles": ["visual"]}},
        {},
    ],
)
def test_items_without_an_rgb_raster_are_refused(assets: dict) -> None:
    with pytest.raises(InvalidInputError, match="no asset with the 'visual' role"):
        choose_asset(_item(assets), URL)


def test_assets_off_http_are_refused() -> None:
    item = _item({"visual": {"href": "s3://bucket/v.tif", "type": COG, "roles": ["visual"]}})
    with pytest.raises(InvalidInputError, match="not at an http"):
        choose_asset(item, URL)
