"""Service under load: N concurrent async jobs, then N slow hrefs, while ``GET /`` is timed.

Starts ``sanchari serve`` on 127.0.0.1 (a synthetic catalogue, the shipped model unless
``--weights``), and prints:

* async load: submission latency, time until all N jobs finished, jobs/s, and ``GET /``
  latency while they run;
* slow hrefs: N image hrefs to a listener that accepts and never answers (allowed with
  ``SANCHARI_REMOTE_ALLOW=127.0.0.1``), half sync, half async; ``GET /`` latency meanwhile, and
  how and when those requests were answered.

    python benchmarks/bench_service_load.py --jobs 16 --hrefs 8
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from service_harness import (
    make_config,
    server,
    silent_listener,
    submit,
    summary,
    wait_job,
    write_scene,
)


def _time_landing(url: str, stop: threading.Event, timings: list[float]) -> None:
    while not stop.is_set():
        started = time.monotonic()
        requests.get(f"{url}/", timeout=30)
        timings.append(time.monotonic() - started)
        time.sleep(0.1)


def async_load(url: str, jobs: int, window: int) -> None:
    timings: list[float] = []
    stop = threading.Event()
    watcher = threading.Thread(target=_time_landing, args=(url, stop, timings))
    watcher.start()
    inputs = {"image": "scene.tif", "tta": "none"}
    started = time.monotonic()
    with ThreadPoolExecutor(jobs) as pool:
        submitted = list(pool.map(lambda _: _timed(lambda: submit(url, inputs)), range(jobs)))
    ids = [r.json()["jobID"] for _, r in submitted if r.status_code == 201]
    statuses = Counter(wait_job(url, job_id)["status"] for job_id in ids)
    elapsed = time.monotonic() - started
    stop.set()
    watcher.join()
    codes = Counter(r.status_code for _, r in submitted)
    print(f"async load: {jobs} jobs on a {window}x{window} px scene, HTTP {dict(codes)}")
    print(f"  submission latency: {summary([t for t, _ in submitted])}")
    print(f"  all finished in {elapsed:.1f} s ({len(ids) / elapsed:.2f} jobs/s): {dict(statuses)}")
    print(f"  GET / meanwhile: {summary(timings)}")


def _timed(call):  # type: ignore[no-untyped-def]
    started = time.monotonic()
    result = call()
    return time.monotonic() - started, result


def slow_hrefs(url: str, hrefs: int, port: int) -> None:
    href = f"http://127.0.0.1:{port}/scene.tif"
    timings: list[float] = []
    stop = threading.Event()
    watcher = threading.Thread(target=_time_landing, args=(url, stop, timings))
    watcher.start()
    with ThreadPoolExecutor(hrefs) as pool:
        calls = [
            pool.submit(_timed, lambda i=i: submit(url, {"image": {"href": href}}, i % 2 == 1))
            for i in range(hrefs)
        ]
        answered = [c.result() for c in calls]
    finals = Counter(
        wait_job(url, r.json()["jobID"])["status"] for _, r in answered if r.status_code == 201
    )
    stop.set()
    watcher.join()
    print(f"slow hrefs: {hrefs} hrefs to a never-answering listener (half sync, half async)")
    print(f"  GET / meanwhile: {summary(timings)}")
    print(
        f"  execute answers: HTTP {dict(Counter(r.status_code for _, r in answered))}, "
        f"latency {summary([t for t, _ in answered])}"
    )
    print(f"  async jobs ended: {dict(finals)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=16)
    parser.add_argument("--hrefs", type=int, default=8)
    parser.add_argument("--window", type=int, default=512, help="scene size in pixels")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--weights", help="checkpoint (default: the shipped model)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sanchari-load-") as tmp, silent_listener() as port:
        folder = Path(tmp)
        write_scene(folder / "catalogue" / "scene.tif", args.window)
        config = make_config(
            folder,
            workers=args.workers,
            weights=args.weights,
            remote_allow="127.0.0.1",
            remote_timeout_s=3,
        )
        with server(config) as (_proc, url):
            async_load(url, args.jobs, args.window)
            slow_hrefs(url, args.hrefs, port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
