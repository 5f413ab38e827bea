"""What the service benchmarks share: a synthetic catalogue, a config, a ``sanchari serve``
process on 127.0.0.1, its worker processes, and a listener that never answers."""

from __future__ import annotations

import contextlib
import copy
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import rasterio
import requests
import yaml
from affine import Affine

from sanchari_processes.service.app import DEFAULT_CONFIG, load_config

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def server(config_path: Path, threads: int = 8, env: dict | None = None) -> Iterator[tuple]:
    """``sanchari serve`` on a free port; yields (process, URL); stops it afterwards."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (config_path.parent / f"server-{port}.log").open("w")
    cmd = [sys.executable, "-m", "sanchari_processes.cli", "serve", "--port", str(port)]
    cmd += ["--threads", str(threads), "--config", str(config_path)]
    proc = subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(requests.ConnectionError):
                if requests.get(f"{url}/conformance", timeout=2).ok:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: see {log.name}")
            time.sleep(0.2)
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def wait_job(url: str, job_id: str, timeout: float = 600) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status = requests.get(f"{url}/jobs/{job_id}", timeout=30).json()
        if status["status"] not in ("accepted", "running") or time.monotonic() > deadline:
            return status
        time.sleep(0.1)


def submit(url: str, inputs: dict, prefer_async: bool = True) -> requests.Response:
    headers = {"Prefer": "respond-async"} if prefer_async else {}
    return requests.post(f"{url}{EXECUTE}", json={"inputs": inputs}, headers=headers, timeout=300)


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
