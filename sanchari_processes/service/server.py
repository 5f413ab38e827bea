"""``sanchari serve``: the service under waitress, a production WSGI server (never Flask debug).

waitress is one process with a thread pool, so the job executor (and its worker processes) is
owned by exactly one server process, and DELETE can always reach the worker running a job.
Start-up is ordered so that a server that cannot run changes nothing: settings are parsed, the
jobs folder's lock is taken, the port is bound, and only then is the store opened, recovered
and the workers started. waitress reads whole requests before a thread sees them (slow clients
hold no thread), refuses bodies over the limit itself, and, with request lookahead, tells a
waiting synchronous execution that its client has gone.
"""

from __future__ import annotations

import json
import logging
import signal
import socket
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from sanchari_processes.errors import SanchariError

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


class PortInUseError(SanchariError):
    """The address to listen on is taken or not ours."""


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (one ``error:`` line when that fails)."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.create_server((host, port), family=family, backlog=1024)
    except OSError as exc:
        raise PortInUseError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def _ogc_error_task() -> type:
    """waitress's own error answers (malformed request, body or headers too large) as OGC
    exceptions in JSON, like every other error of the service."""
    from waitress.task import ErrorTask

    codes = {413: "RequestTooLarge", 431: "RequestTooLarge", 400: "InvalidRequest"}

    class OgcErrorTask(ErrorTask):  # type: ignore[misc]
        def execute(self) -> None:
            error = self.request.error
            code = codes.get(error.code, "NoApplicableCode")
            text = f"{error.reason}: {error.body}".strip()
            body = json.dumps({"type": code, "code": code, "description": text}).encode()
            self.status = f"{error.code} {error.reason}"
            self.response_headers.append(("Content-Type", "application/json"))
            self.set_close_on_finish()
            self.content_length = len(body)
            self.write(body)

    return OgcErrorTask


def show_server_log() -> None:
    """This module's INFO lines (the start-up line) through whatever level the configuration's
    ``logging`` block sets for the rest, and onto stderr when no handler is configured."""
    LOGGER.setLevel(logging.INFO)
    if logging.getLogger().handlers or LOGGER.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    LOGGER.addHandler(handler)


def serve(config_path: Path, host: str, port: int, url: str | None, threads: int) -> None:
    """Run until interrupted (Ctrl-C or SIGTERM), then stop the workers cleanly."""
    import waitress.server
    from waitress.channel import HTTPChannel

    from sanchari_processes.service.app import create_app, sync_limit
    from sanchari_processes.service.settings import load_config

    logging.getLogger("pygeoapi.l10n").setLevel(logging.ERROR)  # a warning per schema key
    config = effective_config(load_config(config_path), host, port, url)
    app = create_app(config, start=False, threads=threads)
    manager: Any = app.extensions["sanchari.manager"]
    manager.acquire_folder()
    try:
        sock = bind(host, port)
        max_body = app.config["MAX_CONTENT_LENGTH"]

        class Channel(HTTPChannel):  # type: ignore[misc]
            error_task_class = _ogc_error_task()

        server = waitress.server.create_server(
            app,
            sockets=[sock],
            threads=threads,
            ident="sanchari",
            max_request_body_size=max_body,
            channel_request_lookahead=1,
        )
        server.channel_class = Channel
        manager.start(sync_limit=sync_limit(threads))
    except BaseException:
        manager.shutdown()
        raise

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    show_server_log()
    LOGGER.info(
        "SANCHARi OGC API - Processes at %s (config %s)", config["server"]["url"], config_path
    )
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        manager.shutdown()
        server.close()
    sys.stderr.flush()
