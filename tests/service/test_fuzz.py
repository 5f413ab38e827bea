"""Fuzzing the running server against its own OpenAPI document (schemathesis).

The real WSGI stack (waitress, the app, real worker processes and model) listens on 127.0.0.1;
schemathesis reads ``/openapi`` from it and sends generated requests, valid and invalid, to
every operation: a few dozen per discovery/status operation, a handful per execution endpoint
(those run real jobs). Every answer must be a documented status with a body that matches its
schema, and none may be a 5xx.

No request leaves the machine: the server runs in this process with name resolution answering
a documentation address (refused by the SSRF guard) and outbound connections refused unless
they go to 127.0.0.1; Earth Engine is the fake of :mod:`tests.gee_fakes`.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from sanchari_processes.service.app import create_app
from tests.gee_fakes import fake_gee_runner, write_service_account_key
from tests.service_fixtures import service_config

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _contain_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Names resolve to 192.0.2.1 (TEST-NET-1) and only loopback may be connected to."""
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.create_connection

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> list:
        try:
            ipaddress.ip_address(str(host).strip("[]"))
        except ValueError:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.0.2.1", port or 80))]
        return real_getaddrinfo(host, port, *args, **kwargs)

    def create_connection(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        if address[0] not in ("127.0.0.1", "localhost"):
            raise ConnectionRefusedError(f"test: no outbound connection to {address[0]}")
        return real_connect(address, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket, "create_connection", create_connection)


@pytest.fixture(scope="module")
def fuzz_server(
    tmp_path_factory: pytest.TempPathFactory, catalogue_dir: Path, tiny_checkpoint: Path
) -> Iterator[str]:
    import waitress.server

    monkeypatch = pytest.MonkeyPatch()
    _contain_network(monkeypatch)
    tmp = tmp_path_factory.mktemp("fuzz")
    key = write_service_account_key(tmp / "key.json")
    config = service_config(
        catalogue_dir,
        tmp / "jobs",
        tiny_checkpoint,
        workers=1,
        queue_size=64,
        gee={"service_account_key": str(key)},
    )
    app = create_app(config, runner=fake_gee_runner)
    server = waitress.server.create_server(
        app, host="127.0.0.1", port=0, threads=4, channel_request_lookahead=1
    )
    port = server.socket.getsockname()[1]
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        app.extensions["sanchari.manager"].shutdown()
        monkeypatch.undo()


#: Generated requests per operation: execution runs real jobs, so only a handful there.
EXAMPLES = {"execution": 8, "other": 40}


def test_no_server_errors_and_no_schema_violations(fuzz_server: str) -> None:
    """Every operation of the served document, with valid and invalid generated requests."""
    schema = schemathesis.openapi.from_url(f"{fuzz_server}/openapi?f=json")
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        kind = "execution" if operation.path.endswith("/execution") else "other"

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES[kind],
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            case.call_and_validate(checks=CHECKS, timeout=120)

        try:
            check()
        except Exception as exc:  # one line per failing operation, all reported together
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert operations >= 10
    assert not failures, "\n\n".join(failures)
