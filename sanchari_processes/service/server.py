"""``sanchari serve``: the service under waitress, a production WSGI server (never Flask debug).

waitress is one process with a thread pool, so the job executor (and its worker processes) is
owned by exactly one server process, and DELETE can always reach the worker running a job.
"""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path
from types import FrameType

LOGGER = logging.getLogger(__name__)


def effective_config(config: dict, host: str, port: int, url: str | None) -> dict:
    """``config`` bound to ``host:port``, with links built on ``url`` (default: that address)."""
    server = dict(config["server"])
    server["bind"] = {"host": host, "port": port}
    if not url:
        shown = "localhost" if host in ("0.0.0.0", "::", "") else host
        url = f"http://{shown}:{port}"
    server["url"] = url.rstrip("/")
    return {**config, "server": server}


def serve(config_path: Path, host: str, port: int, url: str | None, threads: int) -> None:
    """Run until interrupted (Ctrl-C or SIGTERM), then stop the workers cleanly."""
    import waitress

    from sanchari_processes.service.app import create_app, load_config

    config = effective_config(load_config(config_path), host, port, url)
    app = create_app(config)
    manager = app.extensions["sanchari.manager"]

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    LOGGER.warning(
        "SANCHARi OGC API - Processes at %s (config %s)", config["server"]["url"], config_path
    )
    try:
        waitress.serve(app, host=host, port=port, threads=threads, ident="sanchari")
    except KeyboardInterrupt:
        pass
    finally:
        if hasattr(manager, "shutdown"):
            manager.shutdown()
    sys.stderr.flush()
