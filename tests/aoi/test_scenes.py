"""Where an AOI's scenes come from: a folder, a STAC ItemCollection, COG URLs (guarded)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sanchari_processes.aoi.scenes import find_scenes
from sanchari_processes.errors import InvalidInputError


def item(name: str, href: str, bbox: list[float], gsd: float, when: str) -> dict:
    west, south, east, north = bbox
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": name,
        "bbox": bbox,
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {"datetime": when, "gsd": gsd},
        "links": [],
        "assets": {
            "visual": {"href": href, "type": "image/tiff; application=geotiff", "roles": ["visual"]}
        },
    }


def test_an_item_collection_lists_its_visual_assets_best_first(
    tmp_path: Path, scenes_dir: Path
) -> None:
    box = [15, 42, 15.1, 42.1]
    listed = [
        ("old", str(scenes_dir / "scene_00.tif"), 0.5, "2020-01-01T00:00:00Z"),
        ("new", "../scenes/scene_01.tif", 0.5, "2024-01-01T00:00:00Z"),
        ("coarse", "../scenes/scene_10.tif", 10.0, "2025-01-01T00:00:00Z"),
    ]
    features = [item(name, href, box, gsd, when) for name, href, gsd, when in listed]
    collection = {"type": "FeatureCollection", "features": features}
    folder = tmp_path / "stac"
    folder.mkdir()
    path = folder / "items.json"
    path.write_text(json.dumps(collection))
    # relative asset hrefs are the collection file's; the finest, then newest, comes first
    (tmp_path / "scenes").symlink_to(scenes_dir)
    found = find_scenes([str(path)])
    assert [Path(s.location).name for s in found] == [
        "scene_01.tif",
        "scene_00.tif",
        "scene_10.tif",
    ]
    assert found[0].footprint.bounds == (15, 42, 15.1, 42.1)


def test_a_folder_gives_its_georeferenced_geotiffs(scenes_dir: Path) -> None:
    found = find_scenes([str(scenes_dir)])
    assert sorted(Path(s.location).name for s in found) == [
        f"scene_{i}{j}.tif" for i in range(2) for j in range(2)
    ]
    assert all(s.gsd_m == pytest.approx(0.5, rel=1e-3) for s in found)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("http://10.0.0.1/a.tif\n", "imagery http://10.0.0.1/a.tif: .*not a public"),
        ("ftp://example.org/a.tif\n", "not an http"),
    ],
)
def test_cog_urls_pass_the_address_guard(tmp_path: Path, text: str, message: str) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_text("# scenes\n" + text)
    with pytest.raises(InvalidInputError, match=message):
        find_scenes([str(urls)])


def test_an_item_without_an_rgb_asset_is_named(tmp_path: Path) -> None:
    bad = item("x", "a.tif", [0, 0, 1, 1], 1.0, "2020-01-01T00:00:00Z")
    bad["assets"] = {"nir": {"href": "a.tif", "type": "image/tiff", "roles": ["data"]}}
    path = tmp_path / "items.json"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [bad]}))
    with pytest.raises(InvalidInputError, match=r"item x: .*assets: nir"):
        find_scenes([str(path)])
