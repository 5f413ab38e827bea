"""The SSRF guard: which URLs may be fetched, the address connected to, redirects, timeouts.

Every server here is a listener the test starts on 127.0.0.1; names other than ``localhost``
resolve through a fake resolver, so nothing leaves the machine.
"""

from __future__ import annotations

import http.server
import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from sanchari_processes.errors import InvalidInputError, SettingsError, SourceUnavailableError
from sanchari_processes.netguard import (
    AllowList,
    BlockedURLError,
    NetPolicy,
    check_url,
    is_public,
    request,
    resolve,
)
from sanchari_processes.sources.ranges import RemoteBytes

DEFAULT = NetPolicy()

REFUSED = [
    "http://127.0.0.1:8080/x.tif",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/x.tif",
    "http://[::]/x.tif",
    "http://0.0.0.0/x.tif",
    "http://2130706433/x.tif",
    "http://0x7f000001/x.tif",
    "http://0x7f.1/x.tif",
    "http://127.1/x.tif",
    "http://017700000001/x.tif",
    "http://0177.0.0.1/x.tif",
    "http://127.0.0.1./x.tif",
    "http://user:secret@example.com/x.tif",
    "http://example.com@127.0.0.1/x.tif",
    "http://example.com\\@127.0.0.1/x.tif",
    "http://10.1.2.3/x.tif",
    "http://172.16.0.1/x.tif",
    "http://192.168.1.1/x.tif",
    "http://100.64.0.1/x.tif",
    "http://198.18.0.1/x.tif",
    "http://224.0.0.1/x.tif",
    "http://240.0.0.1/x.tif",
    "http://255.255.255.255/x.tif",
    "http://[fe80::1]/x.tif",
    "http://[fc00::1]/x.tif",
    "http://[ff02::1]/x.tif",
    "http://[::ffff:127.0.0.1]/x.tif",
    "http://[::ffff:7f00:1]/x.tif",
    "http://[2002:7f00:1::]/x.tif",
    "http://[64:ff9b::a00:1]/x.tif",
    "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/x.tif",
    "ftp://example.com/x.tif",
    "file:///etc/passwd",
    "gopher://example.com/",
    "http:///x.tif",
    "http://example.com:99999/x.tif",
    "http://exa mple.com/x.tif",
    "http://%31%32%37.0.0.1/x.tif",
]


@pytest.mark.parametrize("url", REFUSED)
def test_refused_without_network(url: str) -> None:
    with pytest.raises(BlockedURLError):
        check_url(url, DEFAULT)


def test_public_forms_pass_the_form_check() -> None:
    assert check_url("https://tiles.example.org/a/b.tif?x=1", DEFAULT) == (
        "https",
        "tiles.example.org",
        443,
    )
    assert check_url("http://8.8.8.8:8080/x.tif", DEFAULT)[1:] == ("8.8.8.8", 8080)
    assert check_url("http://[2606:4700::1111]/x.tif", DEFAULT)[1] == "2606:4700::1111"


def test_is_public() -> None:
    assert is_public(ipaddress.ip_address("8.8.8.8"))
    assert is_public(ipaddress.ip_address("2606:4700::1111"))
    assert not is_public(ipaddress.ip_address("::ffff:10.0.0.1"))
    assert not is_public(ipaddress.ip_address("192.0.2.1"))  # documentation range


def test_names_resolving_to_private_addresses_are_refused() -> None:
    with pytest.raises(BlockedURLError, match="public"):
        resolve("http://localhost:8080/x.tif", DEFAULT)


def test_allow_list_forms() -> None:
    allow = AllowList.parse("tiles.internal, cog.test:8080,10.0.0.0/8,[fd00::1]:9000, 192.168.1.20")
    assert allow.hosts == {"tiles.internal"}
    assert allow.host_ports == {("cog.test", 8080), ("fd00::1", 9000)}
    ip = ipaddress.ip_address
    assert allow.allows("tiles.internal", 1, ip("10.9.9.9"))
    assert allow.allows("cog.test", 8080, ip("127.0.0.1"))
    assert not allow.allows("cog.test", 8081, ip("127.0.0.1"))
    assert allow.allows("x", 80, ip("10.2.3.4"))
    assert allow.allows("x", 80, ip("192.168.1.20"))
    assert not allow.allows("x", 80, ip("192.168.1.21"))
    assert allow.allows("[fd00::1]", 9000, ip("fd00::1"))
    assert not AllowList.parse("")
    for bad in ("host:port", "bad host", "a:0", "[::1]:70000"):
        with pytest.raises(SettingsError):
            AllowList.parse(bad)


class _Handler(http.server.BaseHTTPRequestHandler):
    """Answers by path: /file (ranges), /plain (no ranges), /redirect?to=URL, /host (echo)."""

    body = bytes(range(256)) * 64  # 16 KiB
    seen_hosts: ClassVar[list[str]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        type(self).seen_hosts.append(self.headers.get("Host", ""))
        if self.path.startswith("/redirect?to="):
            self.send_response(302)
            self.send_header("Location", self.path.split("=", 1)[1])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = self.body
        rng = self.headers.get("Range", "")
        if self.path == "/file" and rng.startswith("bytes="):
            start, end = (int(v) for v in rng[6:].split("-"))
            end = min(end, len(data) - 1)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
            data = data[start : end + 1]
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture()
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    _Handler.seen_hosts = []
    yield f"127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _allow(*entries: str) -> NetPolicy:
    return NetPolicy(allow=AllowList.parse(",".join(entries)), read_timeout_s=2)


def test_allow_list_lets_local_listener_through(server: str) -> None:
    with pytest.raises(BlockedURLError):
        request(f"http://{server}/file", DEFAULT)
    assert request(f"http://{server}/file", _allow("127.0.0.1")).status == 200
    assert request(f"http://{server}/file", _allow(server)).status == 200
    assert request(f"http://{server}/file", _allow("127.0.0.0/8")).status == 200
    with pytest.raises(BlockedURLError):
        request(f"http://{server}/file", _allow("127.0.0.1:1"))


def test_every_redirect_hop_is_checked(server: str) -> None:
    other = socket.socket()
    other.bind(("127.0.0.1", 0))
    blocked = f"http://127.0.0.1:{other.getsockname()[1]}/file"
    try:
        with pytest.raises(BlockedURLError):
            request(f"http://{server}/redirect?to={blocked}", _allow(server))
        with pytest.raises(BlockedURLError):  # a metadata address behind a redirect
            request(f"http://{server}/redirect?to=http://169.254.169.254/", _allow(server))
        followed = request(f"http://{server}/redirect?to=/file", _allow(server))
        assert followed.status == 200 and followed.url == f"http://{server}/file"
        loop = f"http://{server}/redirect?to=/redirect?to=/redirect?to=/redirect?to=" * 2
        with pytest.raises(BlockedURLError, match="redirects"):
            request(loop, _allow(server))
    finally:
        other.close()


def test_connects_to_the_checked_address(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """DNS is asked once per request, and the socket goes to exactly that answer."""
    port = int(server.split(":")[1])
    lookups: list[str] = []
    connects: list[tuple[str, int]] = []
    answers = iter([["127.0.0.1"], ["10.0.0.7"], ["8.8.8.8", "10.0.0.8"]])

    real_getaddrinfo = socket.getaddrinfo

    def fake_getaddrinfo(host: str, port_: Any, *args: Any, **kwargs: Any) -> list:
        if host != "cog.test":  # numeric hosts (create_connection's own lookup)
            return real_getaddrinfo(host, port_, *args, **kwargs)
        lookups.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port_)) for a in next(answers)]

    real_connect = socket.create_connection

    def recording_connect(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        connects.append(address)
        return real_connect(address, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    monkeypatch.setattr(socket, "create_connection", recording_connect)
    policy = _allow(f"127.0.0.1:{port}")
    response = request(f"http://cog.test:{port}/file", policy)
    assert response.status == 200
    assert lookups == ["cog.test"]
    assert connects == [("127.0.0.1", port)]
    assert _Handler.seen_hosts[-1] == f"cog.test:{port}"
    # The name now answers a private address that is not allowed: refused before connecting.
    with pytest.raises(BlockedURLError):
        request(f"http://cog.test:{port}/file", policy)
    # A public answer mixed with a private one is refused whole.
    with pytest.raises(BlockedURLError):
        request(f"http://cog.test:{port}/file", policy)
    assert connects == [("127.0.0.1", port)]


def test_never_answering_listener_times_out() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # accepts connections (kernel backlog), never answers
    port = listener.getsockname()[1]
    try:
        started = time.monotonic()
        with pytest.raises(SourceUnavailableError, match="in time"):
            policy = NetPolicy(
                allow=AllowList.parse("127.0.0.1"), connect_timeout_s=0.5, read_timeout_s=0.5
            )
            request(f"http://127.0.0.1:{port}/x.tif", policy)
        assert time.monotonic() - started < 2
    finally:
        listener.close()


def test_range_reads_and_servers_without_ranges(server: str) -> None:
    data = RemoteBytes(f"http://{server}/file", _allow(server), deadline_s=10, block_size=4096)
    assert data.size == len(_Handler.body)
    assert data.read_at(4000, 200) == _Handler.body[4000:4200]
    assert data.read_at(len(_Handler.body) - 10, 100) == _Handler.body[-10:]
    assert data.requests == 3
    with pytest.raises(InvalidInputError, match="range"):
        RemoteBytes(f"http://{server}/plain", _allow(server), deadline_s=10)
