"""``sanchari predict --aoi``: a district from a folder of scenes, resumed, and one clear
``error:`` line for each mistake a user can make."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pyogrio
import pytest

from tests.aoi_fixtures import write_aoi, write_scenes
from tests.cli_fixtures import run
from tests.stac_api_fixtures import stac_api


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("district")
    write_scenes(folder / "scenes")
    return write_aoi(folder / "aoi.geojson"), folder / "scenes"


def aoi_args(district: tuple[Path, Path], out: Path, weights: Path, *more: str) -> list[str]:
    aoi, scenes = district
    return [
        "predict", "--aoi", str(aoi), "--imagery", str(scenes), "-o", str(out),
        "--weights", str(weights), "--tta", "none", "--block-m", "200", "--no-progress", *more,
    ]  # fmt: skip


def test_predict_aoi_writes_a_geopackage_and_resumes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, district: tuple[Path, Path],
    tiny_checkpoint: Path,
) -> None:  # fmt: skip
    out = tmp_path / "roads.gpkg"
    code, _, err = run(capsys, *aoi_args(district, out, tiny_checkpoint))
    assert code == 0, err
    assert "4 blocks of 200 m on EPSG:32633" in err
    assert "CPU-seconds per km²" in err and "projection to 10,000 km² on 1 worker(s)" in err
    info = pyogrio.read_info(out)
    assert info["crs"] == "EPSG:4326" and info["geometry_type"] == "LineString"
    assert len(list((tmp_path / "roads.gpkg.blocks").glob("x*.json"))) == 4
    first = pyogrio.raw.read(out)[2]
    code, _, err = run(capsys, *aoi_args(district, out, tiny_checkpoint, "--resume"))
    assert code == 0, err
    assert "4 blocks (4 from the record)" in err
    assert list(pyogrio.raw.read(out)[2]) == list(first)


def _set(index: int, value: str):
    return lambda args, d: args.__setitem__(index, value.format(d=d))


def _write_then_set(index: int, name: str, text: str):
    def change(args: list[str], d: Path) -> None:
        (d / name).write_text(text)
        args[index] = str(d / name)

    return change


def _far_aoi(args: list[str], d: Path) -> None:
    args[2] = str(write_aoi(d / "far.geojson", shift_m=5000.0))


def _no_imagery(args: list[str], d: Path) -> None:
    del args[3:5]


# argument positions in aoi_args: 2 the AOI, 4 the imagery, 6 the output
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_set(2, "{d}/missing.geojson"), "AOI file not found"),
        (_write_then_set(2, "bad.geojson", "{"), "not valid GeoJSON"),
        (_set(4, "{d}/nothing"), "imagery not found"),
        (_far_aoi, "does not overlap any of the scenes"),
        (lambda a, d: a.extend(["--grid-crs", "EPSG:999999"]), "unknown CRS"),
        (_set(6, "{d}/roads.shp"), "writes .gpkg, .fgb or .geojson"),
        (
            _write_then_set(4, "urls.txt", "http://127.0.0.1:9/a.tif\n"),
            "imagery http://127.0.0.1:9/a.tif: ",
        ),
        (
            _write_then_set(4, "items.json", '{"type": "FeatureCollection", "features": [1]}'),
            "not a STAC ItemCollection",
        ),
        (_set(4, "http://127.0.0.1:9/v1/search"), "STAC API search .*not a public"),
        (_set(4, "http://127.0.0.1:9/v1/search?query=x"), "parameter 'query' is not supported"),
        (lambda a, d: a.extend(["--mask-out", "m.tif"]), "--mask-out does not apply to --aoi"),
        (lambda a, d: a.insert(1, "scene.tif"), "INPUT rasters or --aoi"),
        (_no_imagery, "--aoi needs --imagery"),
    ],
)
def test_mistakes_are_one_error_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, district: tuple[Path, Path],
    tiny_checkpoint: Path, change: Callable[[list[str], Path], None], message: str,
) -> None:  # fmt: skip
    args = aoi_args(district, tmp_path / "roads.gpkg", tiny_checkpoint)
    change(args, tmp_path)
    code, _, err = run(capsys, *args)
    assert code in (1, 2)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert re.search(message, lines[0]), lines[0]
    assert not (tmp_path / "roads.gpkg").exists()


def test_predict_without_inputs_or_aoi_says_what_is_missing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run(capsys, "predict", "-o", "x.geojson")
    assert code == 2 and "missing INPUT rasters" in err
    code, _, err = run(capsys, "predict", "a.tif", "-o", "x.geojson", "--resume")
    assert code == 2 and "apply to --aoi runs only" in err


def test_predict_aoi_over_a_stac_api_search_equals_the_folder_run(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, district: tuple[Path, Path],
    tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The tiny model cut at 0.55 draws a few lines of noise: what the scenes' pixels give."""
    folder_out, search_out = tmp_path / "folder.geojson", tmp_path / "search.geojson"
    args = aoi_args(district, folder_out, tiny_checkpoint, "--threshold", "0.55")
    code, _, err = run(capsys, *args)
    assert code == 0, err
    monkeypatch.setenv("SANCHARI_REMOTE_ALLOW", "127.0.0.1")
    with stac_api(district[1]) as (url, api):
        args[4] = f"{url}/search?collections=scenes&datetime=2024-01-01T00:00:00Z/.."
        args[6] = str(search_out)
        code, _, err = run(capsys, *args)
    assert code == 0, err
    assert "over 4 scene(s)" in err
    assert any(p.startswith("/cogs/") for p in api.requests)
    by_search, by_folder = (json.loads(p.read_text()) for p in (search_out, folder_out))
    assert by_search["features"] and by_search["features"] == by_folder["features"]

    monkeypatch.delenv("SANCHARI_REMOTE_ALLOW")
    with stac_api(district[1]) as (url, api):
        args[4] = f"{url}/search"
        code, _, err = run(capsys, *args)
    assert code == 1 and err.strip().startswith("error: STAC API search") and api.requests == []
