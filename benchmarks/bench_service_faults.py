"""Service faults: SIGTERM and SIGKILL of ``sanchari serve`` mid-job, then a restart; and a
restart of the Dask scheduler (with its workers) while jobs run on it.

Prints, for each signal: how long the server took to exit, how long until its last worker
process was gone, and after a restart on the same jobs folder what became of the finished job
(kept, same bytes), the job that was running (failed "interrupted", results 410) and the jobs
that were queued (run again). For the scheduler (``dask scheduler`` and two ``dask worker``
processes on 127.0.0.1, killed with SIGKILL mid-job and started again at the same address): how
many of the jobs submitted before ended successful, failed or otherwise, what the running ones
said meanwhile, and the outcome of jobs submitted after the restart. The same for a PostgreSQL
restart (``--fault postgres``) and for 100 concurrent clients reading ``/``, ``/processes``,
``/jobs`` and ``/conformance`` while the jobs run (``--fault clients``: latency p50/p99).

    python benchmarks/bench_service_faults.py                    # both
    python benchmarks/bench_service_faults.py --fault scheduler --jobs 4 --window 1024
    python benchmarks/bench_service_faults.py --fault postgres --jobs-db URL --pg-data DIR
    python benchmarks/bench_service_faults.py --fault clients --jobs-db URL   # 100 clients
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from service_harness import (
    alive,
    children_of,
    make_config,
    server,
    submit,
    wait_job,
    write_scene,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.cluster_fixtures import OwnCluster


def fault(folder: Path, sig: signal.Signals, window: int, weights: str | None) -> None:
    config = make_config(folder, workers=1, weights=weights)
    inputs = {"image": "scene.tif", "tta": "d4"}
    with server(config) as (proc, url):
        done = submit(url, {"image": "small.tif", "tta": "none"}).json()["jobID"]
        assert wait_job(url, done)["status"] == "successful"
        result = requests.get(f"{url}/jobs/{done}/results", timeout=30).content
        running = submit(url, inputs).json()["jobID"]
        small = {"image": "small.tif", "tta": "none"}
        queued = [submit(url, small).json()["jobID"] for _ in range(2)]
        while requests.get(f"{url}/jobs/{running}", timeout=30).json()["status"] != "running":
            time.sleep(0.05)
        time.sleep(1.0)  # mid-job
        workers = children_of(proc.pid)
        sent = time.monotonic()
        proc.send_signal(sig)
        proc.wait(60)
        exited = time.monotonic() - sent
        while any(alive(pid) for pid in workers) and time.monotonic() - sent < 30:
            time.sleep(0.01)
        gone = time.monotonic() - sent
        left = [pid for pid in workers if alive(pid)]
    print(
        f"{sig.name} mid-job: server exited in {exited:.2f} s; its {len(workers)} child "
        f"process(es) gone after {gone:.2f} s; survivors: {left or 'none'}"
    )
    started = time.monotonic()
    with server(config) as (_proc, url):
        ready = time.monotonic() - started
        kept = requests.get(f"{url}/jobs/{done}/results", timeout=30).content == result
        cut = requests.get(f"{url}/jobs/{running}", timeout=30).json()
        code = requests.get(f"{url}/jobs/{running}/results", timeout=30).status_code
        again = [wait_job(url, job_id)["status"] for job_id in queued]
        scratch = sorted(p.name for p in (folder / "jobs" / "jobs").glob("*/work"))
    print(
        f"  restart ready in {ready:.1f} s: finished job kept byte-for-byte: {kept}; "
        f"running job -> {cut['status']} ({cut['message']!r}), results HTTP {code}; "
        f"queued jobs -> {again}; work/ folders left: {scratch or 'none'}"
    )


def cluster_fault(
    folder: Path,
    jobs: int,
    weights: str | None,
    jobs_db: str | None,
    disturb: Callable[[OwnCluster, str], str],
) -> None:
    """``jobs`` jobs on a cluster of two workers, ``disturb`` called mid-job (it says what it
    did); then every job's outcome, what they said meanwhile, and two more jobs after it.
    ``jobs_db``: job records in that PostgreSQL database (else SQLite)."""
    cluster = OwnCluster(folder, workers=2)
    cluster.start()
    try:
        config = make_config(folder, workers=1, weights=weights)
        settings = yaml.safe_load(config.read_text(encoding="utf-8"))
        settings["server"]["manager"].update(dask_scheduler=cluster.address, jobs_db=jobs_db)
        config.write_text(yaml.safe_dump(settings), encoding="utf-8")
        inputs = {"image": "scene.tif", "tta": "d4"}
        with server(config) as (_proc, url):
            ids = [submit(url, inputs).json()["jobID"] for _ in range(jobs)]
            deadline = time.monotonic() + 600
            while not any(
                requests.get(f"{url}/jobs/{i}", timeout=30).json()["status"] == "running"
                for i in ids
            ):
                assert time.monotonic() < deadline, "no job started"
                time.sleep(0.1)
            time.sleep(1.0)  # mid-job
            before = collections.Counter(
                requests.get(f"{url}/jobs/{i}", timeout=30).json()["status"] for i in ids
            )
            what = disturb(cluster, url)
            during = collections.Counter(_said(url, i) for i in ids)
            outcome = collections.Counter(wait_job(url, i)["status"] for i in ids)
            after = [submit(url, inputs).json()["jobID"] for _ in range(2)]
            later = collections.Counter(wait_job(url, i)["status"] for i in after)
            runs = [wait_job(url, i)["message"] for i in ids]
    finally:
        cluster.kill()
    print(
        f"{what} mid-job ({dict(before)}): {jobs} jobs -> {dict(outcome)}; meanwhile they said "
        f"{dict(during)}; last messages {dict(collections.Counter(runs))}; 2 jobs submitted "
        f"after -> {dict(later)}"
    )


def _said(url: str, job_id: str) -> str:
    """The job's message, or the HTTP status and title of an answer that is not a job."""
    answer = requests.get(f"{url}/jobs/{job_id}", timeout=30)
    body = answer.json()
    if answer.ok and "message" in body:
        return str(body["message"])
    return f"HTTP {answer.status_code}: {body.get('title') or body.get('description')}"


def restart_scheduler(outage_s: float) -> Callable[[OwnCluster, str], str]:
    """Kill the scheduler and its workers, start them again at the same address after
    ``outage_s`` (as a supervisor would)."""

    def disturb(cluster: OwnCluster, _url: str) -> str:
        cluster.kill()
        time.sleep(outage_s)
        cluster.start()
        return f"scheduler and workers killed, started again after {outage_s:g} s,"

    return disturb


def restart_postgres(pg_data: str) -> Callable[[OwnCluster, str], str]:
    """``pg_ctl restart -m fast`` of the job store's PostgreSQL (run as its owner)."""

    def disturb(_cluster: OwnCluster, _url: str) -> str:
        pg_ctl = Path(shutil.which("pg_ctl") or _pg_ctl())
        cmd = [str(pg_ctl), "-D", pg_data, "-w", "-t", "60", "restart", "-m", "fast"]
        cmd += ["-l", str(Path(pg_data).parent / "restart.log")]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        return "PostgreSQL restarted (pg_ctl restart -m fast)"

    return disturb


def many_clients(clients: int, requests_each: int) -> Callable[[OwnCluster, str], str]:
    """``clients`` concurrent clients, each ``requests_each`` GETs over the landing page, the
    process list, the job list and the conformance page; latency percentiles and codes."""
    paths = ("/", "/processes", "/jobs", "/conformance")

    def one_client(url: str, index: int) -> list[tuple[float, int]]:
        timings = []
        with requests.Session() as session:
            for n in range(requests_each):
                started = time.monotonic()
                code = session.get(url + paths[(index + n) % len(paths)], timeout=60).status_code
                timings.append((time.monotonic() - started, code))
        return timings

    def disturb(_cluster: OwnCluster, url: str) -> str:
        with ThreadPoolExecutor(clients) as pool:
            done = list(pool.map(lambda i: one_client(url, i), range(clients)))
        seconds = sorted(t for timings in done for t, _ in timings)
        codes = collections.Counter(code for timings in done for _, code in timings)
        p50, p99 = (seconds[min(len(seconds) - 1, int(q * len(seconds)))] for q in (0.5, 0.99))
        return (
            f"{clients} clients x {requests_each} GETs on {', '.join(paths)} "
            f"(HTTP {dict(codes)}; p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
            f"max {seconds[-1] * 1000:.0f} ms)"
        )

    return disturb


def _pg_ctl() -> str:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if not found:
        raise SystemExit("error: pg_ctl not found")
    return str(found[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=int, default=2048, help="mid-job scene size (px)")
    parser.add_argument("--weights", help="checkpoint (default: the shipped model)")
    parser.add_argument(
        "--fault",
        choices=("signals", "scheduler", "postgres", "clients", "all"),
        default="all",
        help="which faults",
    )
    parser.add_argument("--jobs", type=int, default=4, help="jobs running at the scheduler fault")
    parser.add_argument("--outage", type=float, default=5.0, help="seconds without a scheduler")
    parser.add_argument("--jobs-db", help="postgresql:// URL of an empty database (else SQLite)")
    parser.add_argument("--clients", type=int, default=100, help="concurrent clients (clients)")
    parser.add_argument("--requests", type=int, default=10, help="GETs per client (clients)")
    parser.add_argument("--pg-data", help="that database's data folder (for --fault postgres)")
    args = parser.parse_args()
    faults = []
    if args.fault in ("scheduler", "all"):
        faults.append(restart_scheduler(args.outage))
    if args.fault in ("postgres", "all") and args.jobs_db and args.pg_data:
        faults.append(restart_postgres(args.pg_data))
    elif args.fault == "postgres":
        parser.error("--fault postgres needs --jobs-db and --pg-data")
    if args.fault in ("clients", "all"):
        faults.append(many_clients(args.clients, args.requests))
    for disturb in faults:
        with tempfile.TemporaryDirectory(prefix="sanchari-faults-") as tmp:
            folder = Path(tmp)
            write_scene(folder / "catalogue" / "scene.tif", args.window)
            cluster_fault(folder, args.jobs, args.weights, args.jobs_db, disturb)
    if args.fault in ("scheduler", "postgres", "clients"):
        return 0
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with tempfile.TemporaryDirectory(prefix="sanchari-faults-") as tmp:
            folder = Path(tmp)
            write_scene(folder / "catalogue" / "scene.tif", args.window)
            write_scene(folder / "catalogue" / "small.tif", 256, seed=1)
            fault(folder, sig, args.window, args.weights)
    return 0


if __name__ == "__main__":
    sys.exit(main())
