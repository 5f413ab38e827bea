"""The QGIS plugin (``qgis_plugin/sanchari``) headless, against a real ``sanchari serve``.

``qgis_process`` runs the plugin's algorithms; QGIS (on the system Python, not this venv)
opens what they produce, and the mask COG by URL through ``/vsicurl/``; "Adapt model to this
area" adapts the server's model from a line layer, and an extraction runs that model. Skipped
when QGIS is not installed (``apt-get install qgis python3-qgis``; ``.ci/run`` installs it).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import rasterio
import requests
import shapely

from tests.server_process import running_server
from tests.service_fixtures import service_config, utm_point
from tests.synthetic import DEFAULT_TRANSFORM

REPO = Path(__file__).resolve().parents[1]
PLUGINS = REPO / "qgis_plugin"
SYSTEM_PYTHON = Path("/usr/bin/python3")


def _qgis_process() -> str | None:
    # Debian's qgis_process wrapper passes --noversioncheck, which qgis_process 3.22 refuses
    return shutil.which("qgis_process.bin") or shutil.which("qgis_process")


pytestmark = pytest.mark.skipif(
    _qgis_process() is None or not SYSTEM_PYTHON.exists(),
    reason="QGIS is not installed (apt-get install qgis python3-qgis)",
)


def _qgis_env(tmp: Path) -> dict[str, str]:
    """QGIS's own environment: the system Python, an empty profile, no display."""
    (tmp / "home").mkdir(exist_ok=True)
    (tmp / "runtime").mkdir(mode=0o700, exist_ok=True)
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp / "home"),
        "XDG_RUNTIME_DIR": str(tmp / "runtime"),
        "QT_QPA_PLATFORM": "offscreen",
        "QGIS_PLUGINPATH": str(PLUGINS),
        "QGIS_CUSTOM_CONFIG_PATH": str(tmp / "profile"),
    }


def _run(args: list[str], env: dict[str, str], timeout: float = 180) -> str:
    done = subprocess.run(
        args, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, catalogue_dir: Path, tiny_checkpoint: Path
) -> str:
    tmp = tmp_path_factory.mktemp("qgis-server")
    config = service_config(catalogue_dir, tmp / "jobs", tiny_checkpoint, workers=1)
    with running_server(config, tmp) as (_proc, url):
        yield url


def test_qgis_process_runs_the_plugin_and_qgis_opens_the_results(
    server: str, tmp_path: Path
) -> None:
    env = _qgis_env(tmp_path)
    qgis = _qgis_process()
    assert qgis is not None
    _run([qgis, "plugins", "enable", "sanchari"], env)
    listed = _run([qgis, "list"], env)
    for name in (
        "extract_roads_extent",
        "extract_roads_point",
        "extract_roads_catalogue",
        "adapt_model",
    ):
        assert f"sanchari:{name}" in listed

    (x0, y1), (x1, y0) = (500010.0, 4649760.0), (500110.0, 4649700.0)
    out = _run(
        [
            qgis,
            "run",
            "sanchari:extract_roads_extent",
            "--json",
            "--",
            f"SERVER={server}",
            f"EXTENT={x0},{x1},{y0},{y1} [EPSG:32633]",
            "TTA=0",
            "MASK=true",
            f"OUTPUT={tmp_path / 'roads.gpkg'}",
            f"MASK_OUTPUT={tmp_path / 'mask.tif'}",
        ],
        env,
    )
    results = json.loads(out[out.index("{") :])["results"]
    info = pyogrio.read_info(results["OUTPUT"])
    assert info["geometry_type"] == "LineString" and info["crs"] == "EPSG:4326"
    with rasterio.open(results["MASK_OUTPUT"]) as mask:
        assert (mask.width, mask.height) == (200, 120) and mask.crs.to_epsg() == 32633
    job = requests.get(results["JOB"], timeout=10).json()
    assert job["status"] == "successful" and job["parameters"]["tta"] == "none"
    assert job["parameters"]["bbox"]["crs"] == "EPSG:32633"

    lon, lat = utm_point(128, 128)
    point = _run(
        [
            qgis,
            "run",
            "sanchari:extract_roads_point",
            "--json",
            "--",
            f"SERVER={server}",
            f"POINT={lon},{lat} [EPSG:4326]",
            "WINDOW_SIZE=96",
            "TTA=0",
            f"OUTPUT={tmp_path / 'point.geojson'}",
        ],
        env,
    )
    assert Path(json.loads(point[point.index("{") :])["results"]["OUTPUT"]).is_file()

    # QGIS itself: the roads as a vector layer, the mask COG by URL as a raster layer
    script = f"""
import sys
from qgis.core import QgsApplication, QgsRasterLayer, QgsVectorLayer
app = QgsApplication([], False)
app.initQgis()
roads = QgsVectorLayer({results["OUTPUT"]!r}, "roads", "ogr")
mask = QgsRasterLayer("/vsicurl/" + {results["MASK_URL"]!r}, "mask", "gdal")
print("LAYERS", roads.isValid(), roads.crs().authid(), mask.isValid(), mask.width())
"""
    shown = _run([str(SYSTEM_PYTHON), "-c", script], env)
    assert "LAYERS True EPSG:4326 True 200" in shown


def test_cancel_dismisses_the_job(server: str, tmp_path: Path) -> None:
    """Cancel in QGIS (a cancelled feedback) sends DELETE: the job ends dismissed."""
    env = _qgis_env(tmp_path)
    script = f"""
import sys
sys.path.insert(0, {str(PLUGINS)!r})
from qgis.core import QgsApplication, QgsProcessingContext, QgsProcessingFeedback
app = QgsApplication([], False)
app.initQgis()
from sanchari.algorithms import CatalogueImageRoads
algorithm = CatalogueImageRoads()
algorithm.initAlgorithm()
feedback = QgsProcessingFeedback()
feedback.cancel()
params = {{"SERVER": {server!r}, "IMAGE": "utm.tif", "TTA": 0,
          "OUTPUT": {str(tmp_path / "never.gpkg")!r}}}
try:
    algorithm.processAlgorithm(params, QgsProcessingContext(), feedback)
except Exception as exc:
    print("RAISED", exc)
"""
    shown = _run([str(SYSTEM_PYTHON), "-c", script], env)
    assert "RAISED cancelled: job" in shown and "dismissed" in shown
    job_id = shown.split("RAISED cancelled: job ", 1)[1].split()[0]
    status = requests.get(f"{server}/jobs/{job_id}", timeout=10).json()
    assert status["status"] == "dismissed"
    assert not (tmp_path / "never.gpkg").exists()


def _utm_roads(path: Path) -> Path:
    """The two roads of the catalogue's utm.tif as a GeoPackage of lines in EPSG:32633."""
    half, third = 128.5, 256 // 3 + 0.5
    lines = [
        shapely.LineString([DEFAULT_TRANSFORM * (0, half), DEFAULT_TRANSFORM * (256, half)]),
        shapely.LineString([DEFAULT_TRANSFORM * (third, 0), DEFAULT_TRANSFORM * (third, 256)]),
    ]
    pyogrio.raw.write(
        path,
        geometry=shapely.to_wkb(np.array(lines, dtype=object)),
        field_data=[np.array(["east-west", "north-south"], dtype=object)],
        fields=["name"],
        crs="EPSG:32633",
        geometry_type="LineString",
        driver="GPKG",
    )
    return path


def test_adapt_model_to_this_area_then_extract_with_it(
    server: str, tmp_path: Path, catalogue_dir: Path
) -> None:
    """A raster layer's extent and a line layer in UTM: the model is adapted there, listed on
    the server, and an extraction with MODEL runs it."""
    env = _qgis_env(tmp_path)
    qgis = _qgis_process()
    assert qgis is not None
    _run([qgis, "plugins", "enable", "sanchari"], env)
    roads = _utm_roads(tmp_path / "roads.gpkg")
    out = _run(
        [
            qgis,
            "run",
            "sanchari:adapt_model",
            "--json",
            "--",
            f"SERVER={server}",
            f"RASTER={catalogue_dir / 'utm.tif'}",
            f"ROADS={roads}",
            "MINUTES=0.5",
            "NAME=qgis-area",
        ],
        env,
        timeout=300,
    )
    results = json.loads(out[out.index("{") :])["results"]
    assert results["MODEL"] == "qgis-area" and "qgis-area" in results["CARD"]
    assert results["VERDICT"].split(":")[0] in {"adapted", "recalibrated"}
    job = requests.get(results["JOB"], timeout=10).json()
    sent = job["parameters"]
    assert sent["bbox"]["crs"] == "EPSG:32633" and sent["minutes"] == 0.5
    assert len(sent["roads"]["features"]) == 2  # no selection: every line, in lon/lat
    lon, lat = sent["roads"]["features"][0]["geometry"]["coordinates"][0]
    assert abs(lon - 15.0) < 0.01 and 41 < lat < 43
    model = requests.get(f"{server}/models/qgis-area", timeout=10).json()
    assert model["parent"] == "tiny-test"

    (x0, y1), (x1, y0) = (500010.0, 4649760.0), (500110.0, 4649700.0)
    extracted = _run(
        [
            qgis,
            "run",
            "sanchari:extract_roads_extent",
            "--json",
            "--",
            f"SERVER={server}",
            f"EXTENT={x0},{x1},{y0},{y1} [EPSG:32633]",
            "TTA=0",
            "MODEL=qgis-area",
            f"OUTPUT={tmp_path / 'adapted-roads.gpkg'}",
        ],
        env,
    )
    done = json.loads(extracted[extracted.index("{") :])["results"]
    assert requests.get(done["JOB"], timeout=10).json()["parameters"]["model"] == "qgis-area"
    assert pyogrio.read_info(done["OUTPUT"])["crs"] == "EPSG:4326"
    assert requests.delete(f"{server}/models/qgis-area", timeout=10).status_code == 204


def test_the_selected_roads_only_when_there_is_a_selection(tmp_path: Path) -> None:
    env = _qgis_env(tmp_path)
    roads = _utm_roads(tmp_path / "roads.gpkg")
    script = f"""
import sys
sys.path.insert(0, {str(PLUGINS)!r})
from qgis.core import QgsApplication, QgsCoordinateTransformContext, QgsVectorLayer
app = QgsApplication([], False)
app.initQgis()
from sanchari.adapt import layer_geojson
layer = QgsVectorLayer({str(roads)!r}, "roads", "ogr")
every = layer_geojson(layer, QgsCoordinateTransformContext(), "roads")
layer.selectByIds([next(layer.getFeatures()).id()])
chosen = layer_geojson(layer, QgsCoordinateTransformContext(), "roads")
lon = chosen["features"][0]["geometry"]["coordinates"][0][0]
print("COUNTS", len(every["features"]), len(chosen["features"]), round(lon))
"""
    shown = _run([str(SYSTEM_PYTHON), "-c", script], env)
    assert "COUNTS 2 1 15" in shown
