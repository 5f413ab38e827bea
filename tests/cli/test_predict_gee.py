"""``sanchari predict-gee``: batch runs over the fake Earth Engine, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import rasterio

from sanchari_processes.cli import cli
from sanchari_processes.sources import gee
from tests.cli_fixtures import run
from tests.gee_fakes import NO_IMAGERY_LON, FakeEarthEngine, write_service_account_key


class _Batch(FakeEarthEngine):
    """No imagery around NO_IMAGERY_LON (one fake for every point of a batch)."""

    def list_images(self, query: gee.ImageQuery) -> list[gee.ImageInfo]:
        found = super().list_images(query)
        return [] if query.region[0] <= NO_IMAGERY_LON <= query.region[2] else found


@pytest.fixture()
def earth_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeEarthEngine:
    """Credentials in the environment, and the fake in place of the real connection."""
    for name in ("GOOGLE_APPLICATION_CREDENTIALS", "SANCHARI_GEE_PROJECT", "SANCHARI_GEE_API_URL"):
        monkeypatch.delenv(name, raising=False)
    key = write_service_account_key(tmp_path / "key.json")
    monkeypatch.setenv("SANCHARI_GEE_SERVICE_ACCOUNT_KEY", str(key))
    fake = _Batch()
    monkeypatch.setattr(gee, "connect", lambda settings: fake)
    return fake


def test_help_documents_the_batch_command(capsys) -> None:
    code, out, _ = run(capsys, "predict-gee", "--help")
    assert code == 0
    for words in ("--lat", "--points", "name,lat,lon", "--collection", "--scale", "--out-dir"):
        assert words in out


def test_batch_writes_one_geojson_per_point(capsys, tmp_path, earth_engine, tiny_checkpoint):
    points = tmp_path / "cities.csv"
    points.write_text(
        f"name,lat,lon\nDenver CO,39.7392,-104.9903\nnowhere,40.0,{NO_IMAGERY_LON}\n"
        "boulder,40.0150,-105.2705\n",
        encoding="utf-8",
    )
    out = tmp_path / "roads"
    code, _, err = run(
        capsys, "predict-gee", "--points", str(points), "--out-dir", str(out),
        "--window-size", "64", "--scale", "2", "--end-date", "2024-05-01", "--weights",
        str(tiny_checkpoint), "--tta", "none", "--no-progress", "--save-imagery",
    )  # fmt: skip
    assert code == 1, err
    lines = err.strip().splitlines()
    assert lines[-1] == "error: 1 of 3 point(s) failed (see above)"
    assert any(line.startswith("nowhere: failed: no NAIP imagery") for line in lines)
    assert sorted(p.name for p in out.iterdir()) == [
        "Denver_CO.geojson",
        "Denver_CO.tif",
        "boulder.geojson",
        "boulder.tif",
    ]
    meta = json.loads((out / "Denver_CO.geojson").read_text())["sanchari"]
    assert [i["date"] for i in meta["imagery"]["images"]] == ["2022-06-15", "2020-08-20"]
    assert meta["window"]["crs"] == "EPSG:32613" and meta["window"]["scale_m"] == 2.0
    assert meta["request"]["latitude"] == 39.7392
    with rasterio.open(out / "Denver_CO.tif") as ds:
        assert ds.transform == gee.point_grid(-104.9903, 39.7392, 2.0, 64).transform
    assert all(q.collection == gee.NAIP for q in earth_engine.queries)


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["--lat", "40", "--lon", "-105"], 1, "earthengine authenticate"),
        (["--lat", "40"], 2, "--lat and --lon"),
        ([], 2, "--points"),
        (["--lat", "40", "--lon", "-105", "--collection", "LANDSAT/X"], 2, "LANDSAT/X"),
        (["--lat", "95", "--lon", "-105"], 1, "'latitude' must be <= 90"),
        (["--lat", "40", "--lon", "-105", "--scale", "0"], 1, "'scale' must be >= 0.25"),
        (["--points", "{tmp}/missing.csv"], 1, "points file not found"),
        (["--points", "{tmp}/bad.csv"], 1, "lat and lon columns"),
    ],
)
def test_errors_are_one_line(capsys, tmp_path, monkeypatch, args, status, message) -> None:
    for name in ("GOOGLE_APPLICATION_CREDENTIALS", "SANCHARI_GEE_SERVICE_ACCOUNT_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SANCHARI_GEE_USER_CREDENTIALS", str(tmp_path / "none"))
    (tmp_path / "bad.csv").write_text("x,y\n1,2\n", encoding="utf-8")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    code, _, err = run(capsys, "predict-gee", *args)
    assert code == status
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert message in lines[0] and "Traceback" not in err


def test_cli_collections_match_the_source() -> None:
    params = {p.name: p for p in cli.commands["predict-gee"].params}
    assert tuple(gee.COLLECTIONS) == tuple(params["collection"].type.choices)
