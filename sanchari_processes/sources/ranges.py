"""A remote file as a seekable file of HTTP range requests, for GDAL to read a COG from.

Every request goes through the address guard (:func:`sanchari_processes.netguard.request`), so
a redirect or a DNS answer cannot lead the reader to a private address.
"""

from __future__ import annotations

import io
import time
from collections import OrderedDict

from sanchari_processes.errors import InvalidInputError, SourceUnavailableError
from sanchari_processes.netguard import NetPolicy, request


class RemoteBytes:
    """The bytes of one remote file, fetched on demand in aligned, cached blocks.

    GDAL reads a GeoTIFF header in many tiny pieces; aligned blocks (``block_size``) and a small
    LRU cache turn them into a few range requests. The first request (made here, so its errors
    surface at once) learns the size and the final URL after redirects; servers that ignore
    ``Range`` are refused (the whole file would come). ``error`` keeps the first failure of a
    later read, which GDAL itself only reports as an I/O error.
    """

    def __init__(
        self,
        url: str,
        policy: NetPolicy,
        *,
        deadline_s: float,
        block_size: int = 256 * 1024,
        cache_blocks: int = 32,
    ) -> None:
        self.url = url
        self.size = -1
        self.requests = 0
        self.error: Exception | None = None
        self._policy = policy
        self._deadline = time.monotonic() + deadline_s
        self._deadline_s = deadline_s
        self._block = block_size
        self._cache: OrderedDict[int, bytes] = OrderedDict()
        self._cache_blocks = cache_blocks
        self._cache[0] = self._fetch(0)

    def read_at(self, position: int, size: int) -> bytes:
        """Up to ``size`` bytes from ``position`` (fewer at the end of the file)."""
        parts: list[bytes] = []
        end = min(position + size, self.size)
        while position < end:
            index, offset = divmod(position, self._block)
            data = self._block_data(index)[offset : offset + end - position]
            if not data:
                break
            parts.append(data)
            position += len(data)
        return b"".join(parts)

    def _block_data(self, index: int) -> bytes:
        data = self._cache.get(index)
        if data is None:
            try:
                data = self._fetch(index)
            except Exception as exc:
                self.error = self.error or exc
                raise
            self._cache[index] = data
            while len(self._cache) > self._cache_blocks:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(index)
        return data

    def _fetch(self, index: int) -> bytes:
        start = index * self._block
        end = start + self._block - 1
        if self.size >= 0:
            end = min(end, self.size - 1)
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise SourceUnavailableError(
                f"reading the remote file took longer than {self._deadline_s:g} s"
            )
        response = request(
            self.url,
            self._policy,
            headers={"Range": f"bytes={start}-{end}", "Accept-Encoding": "identity"},
            deadline_s=left,
            max_body_bytes=end - start + 1,
        )
        self.requests += 1
        if response.status == 416:
            if self.size < 0:
                raise InvalidInputError("the remote file is empty")
            return b""
        if response.status == 200:
            raise InvalidInputError("the server does not support HTTP range requests")
        if response.status != 206:
            raise InvalidInputError(f"the server answered HTTP {response.status}")
        total = response.headers.get("content-range", "").rpartition("/")[2]
        if self.size < 0:
            if not total.isdigit():
                raise InvalidInputError("the server's range answer has no total size")
            self.size = int(total)
            self.url = response.url  # later ranges skip the redirects
        return response.body


class RangeReader(io.RawIOBase):
    """A read-only, seekable file over :class:`RemoteBytes` (one position per reader)."""

    def __init__(self, data: RemoteBytes) -> None:
        super().__init__()
        self._data = data
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._data.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        data = self._data.read_at(self._pos, len(view))
        view[: len(data)] = data
        self._pos += len(data)
        return len(data)
