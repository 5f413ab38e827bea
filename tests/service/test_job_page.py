"""A job's HTML page: its status, and once it succeeded its roads on a map over the imagery.

The page is checked as HTML through the app, and rendered by a real browser (headless
Chromium, where installed) from a real ``sanchari serve`` with the shipped model and demo
scene: the screenshot must show the imagery, and red road lines where the page says it drew
them. Leaflet comes from the service itself (no network).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import requests
from flask.testing import FlaskClient
from PIL import Image

from sanchari_processes.settings import DEFAULT_CONFIG
from tests.server_process import serving
from tests.service_fixtures import utm_point, wait_for_job

REPO = DEFAULT_CONFIG.parent
DEMO = "paris_img1447.tif"
CHROMIUM = next(
    (
        shutil.which(name)
        for name in ("chromium", "chromium-browser", "google-chrome")
        if shutil.which(name)
    ),
    None,
)
#: What the roads are drawn in on the map (job.js).
ROAD_RGB = (255, 0, 0)


class _Links(HTMLParser):
    """The ``href``/``src`` of every element, and the text of ``<script id="map-data">``."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.map_data = ""
        self._in_data = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.urls += [v for k, v in attrs if k in ("href", "src") and v]
        self._in_data = tag == "script" and found.get("id") == "map-data"

    def handle_endtag(self, tag: str) -> None:
        self._in_data = False

    def handle_data(self, data: str) -> None:
        if self._in_data:
            self.map_data += data


def _async_job(client: FlaskClient, outputs: dict) -> str:
    lon, lat = utm_point(128, 128)
    body = {"inputs": {"latitude": lat, "longitude": lon, "window_size": 128}, "outputs": outputs}
    r = client.post(
        "/processes/road-extraction/execution", json=body, headers={"Prefer": "respond-async"}
    )
    assert r.status_code == 201, r.get_data(as_text=True)
    return r.get_json()["jobID"]


def test_results_page_is_html_with_the_map_and_every_output(client: FlaskClient) -> None:
    job_id = _async_job(client, {"roads": {}, "mask": {"transmissionMode": "reference"}})
    assert wait_for_job(client, job_id)["status"] == "successful"
    for path, headers in (
        (f"/jobs/{job_id}/results?f=html", {}),
        (f"/jobs/{job_id}/results", {"Accept": "text/html,application/xhtml+xml"}),
        (f"/jobs/{job_id}?f=html", {}),
    ):
        r = client.get(path, headers=headers)
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html"), path
        page = r.get_data(as_text=True)
        assert page.startswith("<!doctype html>") and job_id in page
        parser = _Links()
        parser.feed(page)
        assert not [u for u in parser.urls if u.startswith(("http", "//")) and "localhost" not in u]
        for output in ("roads", "mask"):  # a download link for every output
            assert f"/jobs/{job_id}/results/{output}" in " ".join(parser.urls)
        data = json.loads(parser.map_data)
        assert data["roads"]["type"] == "FeatureCollection" and "sanchari" not in data["roads"]
        south_west, north_east = data["imagery"]["bounds"]  # the job's own map picture
        assert data["imagery"]["url"].startswith("data:image/png;base64,")
        assert south_west[0] < north_east[0] and south_west[1] < north_east[1]
    for asset in re.findall(r'(?:src|href)="http://[^/]+(/static/sanchari/[^"]+)"', page):
        assert client.get(asset).status_code == 200, asset  # Leaflet and the page's own files
    assert client.get(f"/jobs/{job_id}/results").headers["Content-Type"].startswith("multipart/")


def test_a_running_job_page_reloads_and_a_missing_one_is_html_404(client: FlaskClient) -> None:
    job_id = _async_job(client, {"roads": {}})
    page = client.get(f"/jobs/{job_id}?f=html").get_data(as_text=True)
    status = wait_for_job(client, job_id)["status"]
    if 'http-equiv="refresh"' not in page:
        assert 'id="map-data"' in page and status == "successful"  # it was already done
    r = client.get("/jobs/no-such-job/results?f=html")
    assert r.status_code == 404 and r.headers["Content-Type"].startswith("text/html")


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")
def test_a_browser_draws_the_roads_over_the_imagery(tmp_path: Path) -> None:
    """``sanchari serve`` as the docs say (shipped model, demo catalogue); Chromium renders the
    results page of a job: the imagery fills the map and red lines lie on the roads."""
    config = tmp_path / "pygeoapi-config.yml"
    config.write_text(DEFAULT_CONFIG.read_text(encoding="utf-8"), encoding="utf-8")
    env = {
        "SANCHARI_GEOTIFF_DIR": str(REPO / "geotiffs"),
        "SANCHARI_JOBS_DIR": str(tmp_path / "jobs"),
        "SANCHARI_BACKEND": "torch",
    }
    with serving(config, env=env) as (_, url):
        body = {"inputs": {"image": DEMO, "tta": "none"}, "outputs": {"roads": {}}}
        r = requests.post(
            f"{url}/processes/road-extraction/execution",
            json=body,
            headers={"Prefer": "respond-async"},
            timeout=30,
        )
        job_url = r.headers["Location"]
        for _ in range(600):
            status = requests.get(job_url, timeout=10).json()["status"]
            if status not in ("accepted", "running"):
                break
            time.sleep(0.5)
        assert status == "successful"
        page = f"{job_url}/results?f=html"
        dom = _chromium(tmp_path, "--dump-dom", page).stdout
        shot = tmp_path / "page.png"
        _chromium(tmp_path, f"--screenshot={shot}", page)
    match = re.search(r'data-road-points="([^"]*)"', dom)
    assert match and 'data-map-ready="true"' in dom, dom[-2000:]
    points = json.loads(match.group(1).replace("&quot;", '"'))
    assert len(points) >= 3  # the demo scene has a dozen road segments
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    red = (pixels[..., 0] > 220) & (pixels[..., 1] < 50) & (pixels[..., 2] < 50)
    on_roads = [bool(red[max(0, y - 2) : y + 3, max(0, x - 2) : x + 3].any()) for x, y in points]
    assert sum(on_roads) >= 0.8 * len(points), (points, on_roads)
    xs, ys = zip(*points, strict=True)
    around = pixels[min(ys) : max(ys) + 1, min(xs) : max(xs) + 1]
    assert around.std() > 10  # the imagery is there, not a plain ground
    assert red.sum() > 200  # lines, not a few dots


def _chromium(tmp: Path, action: str, url: str) -> subprocess.CompletedProcess[str]:
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={tmp / 'chromium'}",
        "--window-size=1200,1200",
        "--virtual-time-budget=10000",
        action,
        url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    return done
