"""What the service benchmarks share: a synthetic catalogue, a config, a ``sanchari serve``
process on 127.0.0.1 and its worker processes (the tests' :mod:`tests.server_process`), and a
listener that never answers."""

from __future__ import annotations

import contextlib
import copy
import socket
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import rasterio
import requests
import yaml
from affine import Affine

from sanchari_processes.service.settings import load_config
from sanchari_processes.settings import DEFAULT_CONFIG

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
from tests.server_process import alive, children_of, serving  # noqa: E402

__all__ = [
    "EXECUTE",
    "alive",
    "children_of",
    "make_config",
    "server",
    "silent_listener",
    "submit",
    "summary",
    "wait_job",
    "write_scene",
]
EXECUTE = "/processes/road-extraction/execution"


def write_scene(path: Path, size: int, seed: int = 0) -> Path:
    """A ``size`` x ``size`` RGB GeoTIFF at 0.5 m in EPSG:32633 (random texture, a few roads)."""
    rng = np.random.default_rng(seed)
    data = rng.integers(60, 120, (3, size, size), dtype=np.uint8)
    for i in range(0, size, 97):
        data[:, i : i + 6, :] = 200
        data[:, :, i : i + 6] = 200
    path.parent.mkdir(parents=True, exist_ok=True)
    transform = Affine(0.5, 0, 500000.0, 0, -0.5, 4649776.0)
    profile = {
        "driver": "GTiff",
        "width": size,
        "height": size,
        "count": 3,
        "dtype": "uint8",
        "crs": "EPSG:32633",
        "transform": transform,
        "tiled": True,
        "compress": "deflate",
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


def make_config(folder: Path, *, workers: int, weights: str | None, **processor: object) -> Path:
    """The repository's config pointed at ``folder`` (catalogue, jobs); returns its path."""
    config = copy.deepcopy(load_config(DEFAULT_CONFIG))
    config["server"]["manager"].update(
        output_dir=str(folder / "jobs"), connection=str(folder / "jobs" / "jobs.sqlite3")
    )
    config["server"]["manager"].update(workers=workers, queue_size=256)
    block = config["resources"]["road-extraction"]["processor"]
    block.update(geotiff_dir=str(folder / "catalogue"), device="cpu", **processor)
    if weights:
        block["weights"] = weights
    path = folder / "pygeoapi-config.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def server(
    config_path: Path, threads: int = 8, env: dict | None = None
) -> contextlib.AbstractContextManager[tuple]:
    """``sanchari serve`` on a free port; yields (process, URL); stops it afterwards."""
    return serving(config_path, threads=threads, env=env, start_timeout_s=120)


def wait_job(url: str, job_id: str, timeout: float = 600) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status = requests.get(f"{url}/jobs/{job_id}", timeout=30).json()
        if status["status"] not in ("accepted", "running") or time.monotonic() > deadline:
            return status
        time.sleep(0.1)


def submit(url: str, inputs: dict, prefer_async: bool = True) -> requests.Response:
    """One execution asking for the roads only (without ``outputs`` every output is made)."""
    headers = {"Prefer": "respond-async"} if prefer_async else {}
    body = {"inputs": inputs, "outputs": {"roads": {}}}
    return requests.post(f"{url}{EXECUTE}", json=body, headers=headers, timeout=300)


@contextlib.contextmanager
def silent_listener() -> Iterator[int]:
    """A TCP port on 127.0.0.1 that accepts connections and never answers; yields the port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(256)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def summary(values: list[float]) -> str:
    if not values:
        return "n/a"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return (
        f"median {statistics.median(ordered) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
        f"max {ordered[-1] * 1000:.0f} ms (n={len(ordered)})"
    )
