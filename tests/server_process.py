"""A real ``sanchari serve`` process, for the server tests and the service benchmarks: a free
port on 127.0.0.1, its command line, starting it (until it answers) and stopping it, and the
worker processes it holds. Plain Python, no pytest, so the benchmarks import it too."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_command(config_path: Path, port: int, threads: int = 8) -> list[str]:
    """``sanchari serve`` on 127.0.0.1:``port`` as a subprocess command line."""
    return [
        sys.executable,
        "-m",
        "sanchari_processes.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--threads",
        str(threads),
        "--config",
        str(config_path),
    ]


@contextlib.contextmanager
def serving(
    config_path: Path,
    *,
    threads: int = 8,
    env: dict[str, str] | None = None,
    start_timeout_s: float = 90,
) -> Iterator[tuple[subprocess.Popen, str]]:
    """``sanchari serve`` for ``config_path`` on a free port, its output in ``server-PORT.log``
    beside the config; yields (process, base URL) once it answers, and stops it afterwards."""
    import requests

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = config_path.parent / f"server-{port}.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            serve_command(config_path, port, threads),
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
        try:
            deadline = time.monotonic() + start_timeout_s
            while True:
                with contextlib.suppress(requests.ConnectionError):
                    if requests.get(f"{url}/conformance", timeout=2).ok:
                        break
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(log_path.read_text())
                time.sleep(0.2)
            yield proc, url
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)


@contextlib.contextmanager
def running_server(
    config: dict, folder: Path, env: dict[str, str] | None = None, threads: int = 8
) -> Iterator[tuple[subprocess.Popen, str]]:
    """A real ``sanchari serve`` process for ``config`` (written into ``folder``); yields
    (process, base URL)."""
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    config_path = folder / "pygeoapi-config.yml"
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    with serving(config_path, threads=threads, env=env) as started:
        yield started


def children_of(pid: int) -> list[int]:
    """Live processes whose parent is ``pid`` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"
