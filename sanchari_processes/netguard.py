"""Outbound HTTP(S) to URLs that callers give us, without server-side request forgery.

A URL from a request may name any host, so before a byte is sent the host is resolved and every
address it resolves to must be a public internet address (not loopback, private, link-local,
multicast, reserved or unspecified; IPv4 and IPv6, including IPv4 hidden in IPv6 forms), unless
an allow-list entry names it. The connection is then opened to exactly the address that was
checked (the hostname still goes in ``Host``, SNI and certificate checks), so DNS cannot answer
differently between check and connect. Redirects are followed by hand, each hop checked the same
way. URLs with credentials (``user@host``) and odd spellings of IP addresses (``2130706433``,
``0x7f.1``, ``127.1``) are refused outright. Connect and read timeouts and an overall deadline
bound every request.

Every outbound call goes through :func:`request` with a :class:`NetPolicy`: remote imagery
(:mod:`sanchari_processes.sources.ranges` reads a COG by range requests through it), STAC and
callbacks.
"""

from __future__ import annotations

import http.client
import ipaddress
import re
import socket
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from sanchari_processes.errors import InvalidInputError, SettingsError, SourceUnavailableError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Redirects followed per request (each hop is checked like the first URL).
MAX_REDIRECTS = 5
_REDIRECTS = (301, 302, 303, 307, 308)
#: Host names that only digits, dots and hex prefixes make up: C's inet_aton reads these as IPv4.
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+))*\.?$", re.IGNORECASE)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class BlockedURLError(InvalidInputError):
    """The URL may not be fetched (scheme, credentials, address); the message says why."""


@dataclass(frozen=True)
class AllowList:
    """Non-public destinations a deployment trusts: host names, ``host:port`` pairs, networks.

    Parsed from ``SANCHARI_REMOTE_ALLOW`` (comma-separated): ``tiles.internal``,
    ``tiles.internal:8080``, ``10.0.0.0/8``, ``192.168.1.20``, ``[fd00::1]:9000``.
    """

    hosts: frozenset[str] = frozenset()
    host_ports: frozenset[tuple[str, int]] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, text: str | Iterable[str] | None) -> AllowList:
        """Parse a comma-separated list (or a list of entries); raise :class:`SettingsError`."""
        if text is None:
            return cls()
        entries = text.split(",") if isinstance(text, str) else list(text)
        hosts: set[str] = set()
        host_ports: set[tuple[str, int]] = set()
        networks: list[IPNetwork] = []
        for raw in entries:
            entry = str(raw).strip().lower()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            host, port = _split_host_port(entry)
            if not host or not re.fullmatch(r"[a-z0-9.\-:_]+", host):
                raise SettingsError(f"remote allow-list: cannot read entry {raw!r}")
            if port is None:
                hosts.add(host)
            else:
                host_ports.add((host, port))
        return cls(frozenset(hosts), frozenset(host_ports), tuple(networks))

    def __bool__(self) -> bool:
        return bool(self.hosts or self.host_ports or self.networks)

    def allows(self, host: str, port: int, address: IPAddress) -> bool:
        """Whether ``host:port``, resolved to ``address``, is trusted despite being non-public."""
        host = host.lower().rstrip(".")
        names = {host, str(address)}
        if names & self.hosts:
            return True
        if any((name, port) in self.host_ports for name in names):
            return True
        return any(address in net for net in self.networks if net.version == address.version)


def _split_host_port(entry: str) -> tuple[str, int | None]:
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    elif entry.count(":") == 1:
        host, _, port_text = entry.partition(":")
    else:
        host, port_text = entry, ""
    if not port_text:
        return host, None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise SettingsError(f"remote allow-list: bad port in {entry!r}")
    return host, int(port_text)


@dataclass(frozen=True)
class NetPolicy:
    """Where outbound requests may go and how long they may take (picklable: sent to workers)."""

    allow: AllowList = field(default_factory=AllowList)
    #: Seconds to wait for a TCP (and TLS) connection.
    connect_timeout_s: float = 5.0
    #: Seconds to wait for any one read from the server.
    read_timeout_s: float = 15.0
    #: Largest response body read into memory by :func:`request`.
    max_body_bytes: int = 16 * 1024 * 1024


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (``address``) and what to ask for."""

    url: str
    scheme: str
    host: str
    port: int
    address: IPAddress

    @property
    def path(self) -> str:
        parts = urlsplit(self.url)
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def check_url(url: str, policy: NetPolicy) -> tuple[str, str, int]:
    """The ``(scheme, host, port)`` of ``url`` when its form is acceptable, without any network.

    Refuses other schemes, credentials in the URL, a missing host, bad ports, odd IP spellings,
    and literal IP addresses that are not public (unless allowed).
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise BlockedURLError("the URL cannot be parsed") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise BlockedURLError("only http(s) URLs are fetched")
    if "@" in parts.netloc or parts.username is not None:
        raise BlockedURLError("URLs with credentials (user@host) are refused")
    host = (parts.hostname or "").lower()
    if not host:
        raise BlockedURLError("the URL has no host")
    if any(c in url for c in "\r\n\t\x00 "):
        raise BlockedURLError("the URL contains whitespace or control characters")
    port = port or (443 if scheme == "https" else 80)
    if port == 0:
        raise BlockedURLError("the URL has no valid port")
    literal = _ip_literal(host)
    if literal is None:
        if _NUMERIC_HOST.match(host):
            raise BlockedURLError("the host is a number, not a name or a dotted IPv4 address")
        try:
            ascii_host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise BlockedURLError("the host name is not valid") from None
        if not re.fullmatch(r"[a-z0-9_\-]+(\.[a-z0-9_\-]+)*\.?", ascii_host):
            raise BlockedURLError("the host name is not valid")
        host = ascii_host
    elif not _permitted(host, port, literal, policy):
        raise BlockedURLError("the host is not a public internet address")
    return scheme, host, port


def resolve(url: str, policy: NetPolicy) -> list[Target]:
    """Every address ``url``'s host resolves to, each checked; refuses if any is not public.

    One non-public answer refuses the whole name: a name that mixes public and private
    addresses is a rebinding attempt or a misconfiguration, and either way not for us to fetch.
    """
    scheme, host, port = check_url(url, policy)
    literal = _ip_literal(host)
    if literal is not None:
        addresses: list[IPAddress] = [literal]
    else:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError, OSError):
            raise BlockedURLError("the host name could not be resolved") from None
        addresses = []
        for info in infos:
            address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            if address not in addresses:
                addresses.append(address)
    if not addresses:
        raise BlockedURLError("the host name could not be resolved")
    for address in addresses:
        if not _permitted(host, port, address, policy):
            raise BlockedURLError("the host is not a public internet address")
    return [Target(url, scheme, host, port, a) for a in addresses]


def is_public(address: IPAddress) -> bool:
    """A globally routable unicast address (IPv4 inside IPv6 forms judged as IPv4)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.teredo is not None:
            return False
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public(embedded)
    return address.is_global and not (
        address.is_multicast
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_unspecified
    )


def _permitted(host: str, port: int, address: IPAddress, policy: NetPolicy) -> bool:
    return is_public(address) or policy.allow.allows(host, port, address)


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


# -- connections -------------------------------------------------------------------------------
class _PinnedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to a fixed, already-checked address (``Host`` stays the name)."""

    def __init__(self, target: Target, policy: NetPolicy, deadline: float) -> None:
        super().__init__(target.host, target.port, timeout=policy.connect_timeout_s)
        self._target = target
        self._policy = policy
        self._deadline = deadline

    def _open_socket(self) -> socket.socket:
        timeout = min(self._policy.connect_timeout_s, _remaining(self._deadline))
        sock = socket.create_connection((str(self._target.address), self._target.port), timeout)
        sock.settimeout(min(self._policy.read_timeout_s, _remaining(self._deadline)))
        return sock

    def connect(self) -> None:
        self.sock = self._open_socket()


class _PinnedHTTPSConnection(_PinnedHTTPConnection):
    """HTTPS to a fixed address; SNI and the certificate check use the host name."""

    _context = ssl.create_default_context()

    def connect(self) -> None:
        sock = self._open_socket()
        self.sock = self._context.wrap_socket(sock, server_hostname=self._target.host)


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("deadline passed")
    return left


@dataclass
class Response:
    """A finished request: final URL (after redirects), status, headers, body."""

    url: str
    status: int
    headers: dict[str, str]
    body: bytes


def request(
    url: str,
    policy: NetPolicy,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    deadline_s: float | None = None,
    max_body_bytes: int | None = None,
) -> Response:
    """One guarded request, following redirects (each hop checked); the body is read whole.

    Raises :class:`BlockedURLError` (400) for a URL we refuse and
    :class:`SourceUnavailableError` (503) when the server cannot be reached or is too slow.
    """
    deadline = time.monotonic() + (deadline_s or 3 * policy.read_timeout_s)
    limit = policy.max_body_bytes if max_body_bytes is None else max_body_bytes
    for _hop in range(MAX_REDIRECTS + 1):
        response = _request_once(url, policy, method, headers or {}, body, deadline, limit)
        location = response.headers.get("location")
        if response.status not in _REDIRECTS or not location:
            return response
        url = urljoin(url, location)
        if response.status == 303:
            method, body = "GET", None
    raise BlockedURLError(f"more than {MAX_REDIRECTS} redirects")


def _request_once(
    url: str,
    policy: NetPolicy,
    method: str,
    headers: dict[str, str],
    body: bytes | None,
    deadline: float,
    limit: int,
) -> Response:
    targets = resolve(url, policy)
    last_error: Exception | None = None
    for target in targets:
        cls = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
        conn = cls(target, policy, deadline)
        try:
            conn.request(method, target.path, body=body, headers=headers)
            raw = conn.getresponse()
            data = _read_body(raw, conn, policy, deadline, limit)
            found = {k.lower(): v for k, v in raw.getheaders()}
            return Response(url, raw.status, found, data)
        except ssl.SSLError:
            raise SourceUnavailableError("TLS with the remote server failed") from None
        except TimeoutError:
            raise SourceUnavailableError(
                f"the remote server did not answer in time ({policy.read_timeout_s:g} s)"
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            last_error = exc  # try the next checked address
        finally:
            conn.close()
    raise SourceUnavailableError(
        f"the remote server could not be reached ({type(last_error).__name__})"
    )


def _read_body(
    raw: http.client.HTTPResponse,
    conn: _PinnedHTTPConnection,
    policy: NetPolicy,
    deadline: float,
    limit: int,
) -> bytes:
    length = raw.getheader("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise SourceUnavailableError("the remote server sent more data than asked for")
    chunks: list[bytes] = []
    size = 0
    while True:
        if conn.sock is not None:
            conn.sock.settimeout(min(policy.read_timeout_s, _remaining(deadline)))
        chunk = raw.read(min(65536, limit + 1 - size))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise SourceUnavailableError("the remote server sent more data than asked for")
