"""A non-editable install works: the wheel carries the model and the default configuration.

The package finds them through ``importlib.resources``, never through the clone's layout, so a
``pip install .`` runs ``sanchari predict`` from any folder.
"""

from __future__ import annotations

import functools
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
    model_files = {".json", ".safetensors", ".onnx", ".xml", ".bin"}
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


@pytest.fixture(scope="module")
def site(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel installed into a folder of its own."""
    site = tmp_path_factory.mktemp("site")
    install = [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site)]
    subprocess.run([*install, str(wheel)], check=True, capture_output=True)
    return site


#: Makes torch and the libraries built on it look absent, as in the base install (a
#: ``None`` in ``sys.modules`` fails the import and ``importlib.util.find_spec`` alike).
NO_TORCH = """import sys
for name in ("torch", "torchvision", "timm", "segmentation_models_pytorch", "nncf"):
    sys.modules[name] = None
"""

APP_CHECK = """import sys
from sanchari_processes.service.app import create_app
from sanchari_processes.service.settings import load_config
from sanchari_processes.settings import DEFAULT_CONFIG
app = create_app(load_config(DEFAULT_CONFIG), start=False)
answer = app.test_client().get("/processes?f=json")
ids = sorted(p["id"] for p in answer.get_json()["processes"])
print(answer.status_code, *ids, "torch" in sys.modules and sys.modules["torch"] is not None)
"""


def test_base_install_predicts_and_serves_without_torch(site: Path, tmp_path: Path) -> None:
    """The shipped model carries its exported network: predict and the service need no torch
    (a fresh cache, so nothing exported earlier is reused)."""
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(NO_TORCH, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": f"{blocker}{os.pathsep}{site}"}
    env["SANCHARI_CACHE_DIR"] = str(tmp_path / "cache")
    env.pop("SANCHARI_WEIGHTS", None)
    code = "import sys; from sanchari_processes.cli import main; sys.exit(main())"
    args = ["predict", str(DEMO), "-o", "r.geojson", "--tta", "none", "--no-progress"]
    run = functools.partial(subprocess.run, cwd=tmp_path, env=env, capture_output=True, text=True)
    done = run([sys.executable, "-c", code, *args])
    assert done.returncode == 0, done.stderr
    assert len(json.loads((tmp_path / "r.geojson").read_text())["features"]) > 10
    int8 = run(
        [sys.executable, "-c", code, *args[:3], "int8.geojson", *args[4:], "--precision", "int8"]
    )
    assert int8.returncode == 0, int8.stderr  # the shipped int8 network: no NNCF needed either
    inference = json.loads((tmp_path / "int8.geojson").read_text())["sanchari"]["inference"]
    assert inference["arithmetic"] == "int8" and inference["backend"] == "openvino"
    torch_try = run([sys.executable, "-c", code, *args, "--backend", "torch"])
    assert torch_try.returncode != 0 and "sanchari-processes[train]" in torch_try.stderr
    assert "Traceback" not in torch_try.stderr
    app = run([sys.executable, "-c", APP_CHECK])
    assert app.returncode == 0, app.stderr
    status, *ids, torch_loaded = app.stdout.strip().splitlines()[-1].split()
    assert status == "200" and "road-extraction" in ids and torch_loaded == "False"


def test_installed_copy_predicts_from_another_folder(site: Path, tmp_path: Path) -> None:
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
