"""A non-editable install works: the wheel carries the model and the default configuration.

The package finds them through ``importlib.resources``, never through the clone's layout, so a
``pip install .`` runs ``sanchari predict`` from any folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "geotiffs" / "paris_img1447.tif"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    cmd = [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation"]
    done = subprocess.run([*cmd, "-q", "-w", str(out)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {done.stderr.strip()[-300:]}")
    (path,) = out.glob("*.whl")
    return path


def test_wheel_carries_the_model_and_the_config(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    model_files = {".json", ".safetensors"}
    shipped = {p.name for p in (REPO / "weights").iterdir() if p.suffix in model_files}
    assert shipped and {f"sanchari_processes/data/weights/{n}" for n in shipped} <= names
    assert "sanchari_processes/data/pygeoapi-config.yml" in names
    static = REPO / "sanchari_processes" / "service" / "static"  # the job page, offline
    served = {
        f"sanchari_processes/service/static/{p.relative_to(static)}"
        for p in static.rglob("*")
        if p.is_file()
    }
    assert served and served <= names
    assert "sanchari_processes/service/static/leaflet/LICENSE" in names
    assert "sanchari_processes/service/templates/job.html" in names


def test_installed_copy_predicts_from_another_folder(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    install = [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site)]
    subprocess.run([*install, str(wheel)], check=True, capture_output=True)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("SANCHARI_WEIGHTS", None)
    code = "import sys; from sanchari_processes.cli import main; sys.exit(main())"
    args = ["predict", str(DEMO), "-o", "r.geojson", "--tta", "none", "--no-progress"]
    done = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=work, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    roads = json.loads((work / "r.geojson").read_text())
    assert roads["type"] == "FeatureCollection" and len(roads["features"]) > 10
    # the copy in the installed folder ran, with its own copy of the model
    check = "import sanchari_processes.settings as s; print(s.SHIPPED_WEIGHTS)"
    where = subprocess.run(
        [sys.executable, "-c", check], cwd=work, env=env, capture_output=True, text=True
    )
    assert where.stdout.strip().startswith(str(site))
