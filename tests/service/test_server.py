"""``sanchari serve`` as a real process: settings errors, one server per jobs folder, SIGKILL,
slow remote servers, oversized bodies. All traffic goes to 127.0.0.1, to listeners started here.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from sanchari_processes.settings import DEFAULT_CONFIG
from tests.server_process import alive, children_of, free_port, running_server, serve_command
from tests.service_fixtures import service_config

EXECUTE = "/processes/road-extraction/execution"


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"SANCHARI_WORKERS": "abc"}, "workers must be an integer"),
        ({"SANCHARI_MAX_BODY": "12"}, "max_body_bytes"),
        ({"SANCHARI_REMOTE_ALLOW": "bad host!"}, "allow-list"),
        ({"SANCHARI_REMOTE_TIMEOUT": "soon"}, "remote_timeout_s"),
        ({"SANCHARI_DASK_SCHEDULER": "localhost:8786"}, "tcp://HOST:PORT"),
        ({"SANCHARI_JOBS_DB": "mysql://db/jobs"}, "must be a postgresql://"),
        (
            {"SANCHARI_JOBS_DB": "postgresql://u:secret@127.0.0.1:1/jobs"},
            "cannot use the job database postgresql://u:***@127.0.0.1:1/jobs",
        ),
    ],
)
def test_bad_setting_is_one_error_line(tmp_path: Path, env: dict, words: str) -> None:
    env = {**os.environ, "SANCHARI_JOBS_DIR": str(tmp_path / "jobs"), **env}
    done = subprocess.run(
        serve_command(DEFAULT_CONFIG, free_port()),
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and words in lines[0]
    assert not (tmp_path / "jobs" / "jobs.sqlite3").exists()


def test_the_start_up_line_is_shown(
    tmp_path: Path, catalogue_dir: Path, tiny_checkpoint: Path
) -> None:
    """The server's one start-up line (an INFO record) reaches the terminal."""
    config = service_config(catalogue_dir, tmp_path / "jobs", tiny_checkpoint, workers=1)
    with running_server(config, tmp_path / "a") as (_proc, url):
        (log,) = (tmp_path / "a").glob("server-*.log")
        assert f"SANCHARi OGC API - Processes at {url} (config " in log.read_text()


def _submit(url: str, n: int) -> list[str]:
    body = {"inputs": {"image": "utm.tif", "tta": "d4"}}
    headers = {"Prefer": "respond-async"}
    return [
        requests.post(f"{url}{EXECUTE}", json=body, headers=headers, timeout=30).json()["jobID"]
        for _ in range(n)
    ]


def _wait(url: str, job_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status = requests.get(f"{url}/jobs/{job_id}", timeout=10).json()
        if status["status"] not in ("accepted", "running") or time.monotonic() > deadline:
            return status
        time.sleep(0.1)


def test_second_server_on_the_folder_exits_and_changes_nothing(
    tmp_path: Path, catalogue_dir: Path, tiny_checkpoint: Path
) -> None:
    config = service_config(catalogue_dir, tmp_path / "jobs", tiny_checkpoint, workers=1)
    with running_server(config, tmp_path / "a") as (_proc, url):
        jobs = _submit(url, 3)
        port = int(url.rsplit(":", 1)[1])
        for second_port in (free_port(), port):  # its own port, or the first one's
            done = subprocess.run(
                serve_command(tmp_path / "a" / "pygeoapi-config.yml", second_port),
                capture_output=True,
                text=True,
                timeout=120,
            )
            lines = done.stderr.strip().splitlines()
            assert done.returncode == 1 and len(lines) == 1, done.stderr
            assert "another sanchari server" in lines[0] and str(_proc.pid) in lines[0]
        statuses = [_wait(url, job_id)["status"] for job_id in jobs]
        assert statuses == ["successful"] * 3
        assert all(requests.get(f"{url}/jobs/{j}/results", timeout=10).ok for j in jobs)


def test_sigkill_takes_the_workers_along_and_loses_nothing_finished(
    tmp_path: Path, catalogue_dir: Path, tiny_checkpoint: Path
) -> None:
    config = service_config(catalogue_dir, tmp_path / "jobs", tiny_checkpoint, workers=2)
    with running_server(config, tmp_path / "a") as (proc, url):
        done = _submit(url, 1)[0]
        assert _wait(url, done)["status"] == "successful"
        result = requests.get(f"{url}/jobs/{done}/results", timeout=10).content
        running = _submit(url, 2)
        workers = children_of(proc.pid)
        assert len(workers) >= 2
        proc.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        proc.wait(10)
        while any(alive(pid) for pid in workers) and time.monotonic() - killed < 5:
            time.sleep(0.05)
        survivors = [pid for pid in workers if alive(pid)]
        assert not survivors and time.monotonic() - killed < 2
    with running_server(config, tmp_path / "b") as (_proc, url):
        assert requests.get(f"{url}/jobs/{done}", timeout=10).json()["status"] == "successful"
        assert requests.get(f"{url}/jobs/{done}/results", timeout=10).content == result
        for job_id in running:  # each was either interrupted (410) or queued and run again
            status = _wait(url, job_id)
            if status["status"] == "failed":
                assert "interrupted by a restart" in status["message"]
                assert requests.get(f"{url}/jobs/{job_id}/results", timeout=10).status_code == 410
            else:
                assert status["status"] == "successful"


def test_never_answering_hrefs_leave_the_api_responsive(
    tmp_path: Path, catalogue_dir: Path, tiny_checkpoint: Path
) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)  # the kernel completes handshakes; nobody ever answers
    href = f"http://127.0.0.1:{listener.getsockname()[1]}/scene.tif"
    # Room for all 16 in planning (4 network slots + 16 queued): none may be refused as busy.
    config = service_config(
        catalogue_dir, tmp_path / "jobs", tiny_checkpoint, workers=1, queue_size=16
    )
    processor = config["resources"]["road-extraction"]["processor"]
    processor.update(remote_allow="127.0.0.1", remote_timeout_s=2)
    try:
        with running_server(config, tmp_path / "a") as (_proc, url):

            def execute(prefer: str | None) -> int:
                headers = {"Prefer": prefer} if prefer else {}
                body = {"inputs": {"image": {"href": href}}}
                return requests.post(f"{url}{EXECUTE}", json=body, headers=headers, timeout=60)

            with ThreadPoolExecutor(16) as pool:
                sync = [pool.submit(execute, None) for _ in range(8)]
                later = [pool.submit(execute, "respond-async") for _ in range(8)]
                time.sleep(0.5)
                timings = []
                for _ in range(10):
                    started = time.monotonic()
                    assert requests.get(f"{url}/", timeout=10).ok
                    timings.append(time.monotonic() - started)
                    time.sleep(0.2)
                answers = [f.result() for f in sync]
                accepted = [f.result() for f in later]
            assert max(timings) < 1.0, timings
            for answer in answers:  # timed out (400) or beyond the sync cap (503)
                assert answer.status_code in (400, 503), answer.text
                if answer.status_code == 400:
                    assert "in time" in answer.json()["description"]
            for answer in accepted:
                assert answer.status_code == 201, answer.text
                final = _wait(url, answer.json()["jobID"])
                assert final["status"] == "failed" and "in time" in final["message"]
    finally:
        listener.close()


def test_body_over_limit_is_413_json(
    tmp_path: Path, catalogue_dir: Path, tiny_checkpoint: Path
) -> None:
    config = service_config(catalogue_dir, tmp_path / "jobs", tiny_checkpoint, workers=1)
    with running_server(config, tmp_path / "a") as (_proc, url):
        body = b'{"inputs": {"image": "' + b"a" * (3 * 1024 * 1024) + b'"}}'
        r = requests.post(
            f"{url}{EXECUTE}", data=body, headers={"Content-Type": "application/json"}, timeout=30
        )
        assert r.status_code == 413 and r.json()["code"] == "RequestTooLarge"
        assert requests.get(f"{url}/", timeout=10).ok


if sys.platform != "linux":  # pragma: no cover
    pytestmark = pytest.mark.skip("reads /proc")
