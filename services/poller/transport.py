"""A lean HTTP/1.1 transport for status checks.

A status check is a small request with a small JSON answer, thousands a second. Under httpx's
own transport, httpcore and anyio cost more CPU than all the rest of a check together (profiled
with py-spy: the pool walks every pooled connection on each request and each response close and
asks each idle one, with system calls, whether its socket became readable; anyio cancel scopes and
locks look up the current task several times per request). This transport keeps httpx's client
(URL and header handling, auth, timeouts configuration, error types) and replaces only the
connection layer: asyncio streams, a list of idle keep-alive connections per origin, and a small
response parser (Content-Length, chunked, or until close; gzip and the like decoded by httpx).

Errors are httpx's (ConnectError, ConnectTimeout, ReadTimeout, WriteTimeout, ReadError,
RemoteProtocolError), so adapters classify them as before. A request whose body is a stream of
unknown length goes to a regular httpx transport. A request sent on a kept-alive connection that
the server had already closed (no byte of an answer came back) is sent once more on a new one if
its method is idempotent, as browsers do.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections import deque
from dataclasses import dataclass

import httpx

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
MAX_HEAD = 64 * 1024
MAX_BODY = 64 * 1024 * 1024


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    idle_since: float = 0.0

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class _ServerClosed(Exception):
    """The connection gave no byte of an answer: the server had closed it."""


class LeanTransport(httpx.AsyncBaseTransport):
    def __init__(
        self,
        *,
        limits: httpx.Limits | None = None,
        ssl_context: ssl.SSLContext | None = None,
        fallback: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        limits = limits or httpx.Limits(max_connections=200, max_keepalive_connections=50)
        self.max_idle = limits.max_keepalive_connections or 0
        self.keepalive_s = limits.keepalive_expiry if limits.keepalive_expiry is not None else 5.0
        self._slots = asyncio.Semaphore(limits.max_connections) if limits.max_connections else None
        self._ssl = ssl_context
        self._idle: dict[tuple[bytes, bytes, int], deque[_Connection]] = {}
        self.fallback = fallback or httpx.AsyncHTTPTransport(limits=limits)

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context()
        return self._ssl

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        stream = request.stream
        if not isinstance(stream, httpx.ByteStream) or request.url.scheme not in ("http", "https"):
            return await self.fallback.handle_async_request(request)
        if self._slots is None:
            return await self._handle(request)
        async with self._slots:
            return await self._handle(request)

    async def _handle(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        url = request.url
        origin = (url.raw_scheme, url.raw_host, url.port or (443 if url.scheme == "https" else 80))
        head = _request_head(request)
        body = request.content
        reused = self._take_idle(origin)
        if reused is not None:
            try:
                return await self._exchange(reused, origin, request, head, body, timeouts)
            except _ServerClosed:
                if request.method not in IDEMPOTENT:
                    raise httpx.RemoteProtocolError(
                        "Server disconnected without sending a response.", request=request
                    ) from None
        connection = await self._connect(origin, request, timeouts.get("connect"))
        try:
            return await self._exchange(connection, origin, request, head, body, timeouts)
        except _ServerClosed:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            ) from None

    def _take_idle(self, origin: tuple[bytes, bytes, int]) -> _Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            connection = idle.pop()  # the most recently used: least likely closed by the server
            if now - connection.idle_since < self.keepalive_s and not connection.reader.at_eof():
                return connection
            connection.close()
        return None

    def _give_back(self, origin: tuple[bytes, bytes, int], connection: _Connection) -> None:
        idle = self._idle.setdefault(origin, deque())
        if len(idle) >= self.max_idle:
            connection.close()
            return
        connection.idle_since = time.monotonic()
        idle.append(connection)

    async def _connect(
        self, origin: tuple[bytes, bytes, int], request: httpx.Request, timeout: float | None
    ) -> _Connection:
        scheme, host, port = origin
        hostname = host.decode("ascii")
        tls = self._ssl_context() if scheme == b"https" else None
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    hostname, port, ssl=tls, server_hostname=hostname if tls else None, limit=MAX_HEAD
                )
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"connect timed out ({hostname}:{port})", request=request) from exc
        except (OSError, ssl.SSLError) as exc:
            raise httpx.ConnectError(f"{type(exc).__name__}: {exc}", request=request) from exc
        return _Connection(reader, writer)

    async def _exchange(
        self,
        connection: _Connection,
        origin: tuple[bytes, bytes, int],
        request: httpx.Request,
        head: bytes,
        body: bytes,
        timeouts: dict[str, float | None],
    ) -> httpx.Response:
        done = False
        try:
            try:
                connection.writer.write(head + body if len(body) < 65536 else head)
                if len(body) >= 65536:
                    connection.writer.write(body)
                async with asyncio.timeout(timeouts.get("write")):
                    await connection.writer.drain()
            except TimeoutError as exc:
                raise httpx.WriteTimeout("write timed out", request=request) from exc
            except OSError as exc:
                raise _ServerClosed from exc
            try:
                async with asyncio.timeout(timeouts.get("read")):
                    status, reason, headers, content, keep = await _read_response(
                        connection.reader, request.method
                    )
            except TimeoutError as exc:
                raise httpx.ReadTimeout("read timed out", request=request) from exc
            except _ServerClosed:
                raise
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
                raise httpx.ReadError(f"{type(exc).__name__}: {exc}", request=request) from exc
            except ValueError as exc:
                raise httpx.RemoteProtocolError(f"malformed answer: {exc}", request=request) from exc
            done = keep
        finally:
            if done:
                self._give_back(origin, connection)
            else:
                connection.close()
        return httpx.Response(
            status,
            headers=headers,
            stream=httpx.ByteStream(content),
            request=request,
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": reason},
        )

    async def aclose(self) -> None:
        for idle in self._idle.values():
            while idle:
                idle.pop().close()
        await self.fallback.aclose()


def _request_head(request: httpx.Request) -> bytes:
    url = request.url
    target = url.raw_path or b"/"
    lines = [request.method.encode("ascii") + b" " + target + b" HTTP/1.1"]
    lines.extend(name + b": " + value for name, value in request.headers.raw)
    return b"\r\n".join(lines) + b"\r\n\r\n"


async def _read_response(
    reader: asyncio.StreamReader, method: str
) -> tuple[int, bytes, list[tuple[bytes, bytes]], bytes, bool]:
    """Status, reason, headers, body, and whether the connection may carry another request."""
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            raise _ServerClosed from exc
        raise
    except ConnectionResetError as exc:
        raise _ServerClosed from exc
    lines = raw[:-4].split(b"\r\n")
    version, _, rest = lines[0].partition(b" ")
    code, _, reason = rest.partition(b" ")
    status = int(code)
    if not version.startswith(b"HTTP/1."):
        raise ValueError(f"not HTTP/1.x: {lines[0][:40]!r}")
    headers: list[tuple[bytes, bytes]] = []
    length: int | None = None
    chunked = False
    keep = version == b"HTTP/1.1"
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            raise ValueError("header line without a colon")
        value = value.strip()
        headers.append((name, value))
        lower = name.lower()
        if lower == b"content-length":
            length = int(value)
        elif lower == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif lower == b"connection":
            token = value.lower()
            keep = b"keep-alive" in token if version == b"HTTP/1.0" else b"close" not in token
    if 100 <= status < 200:
        # An interim answer (100 Continue): the real one follows.
        return await _read_response(reader, method)
    if method == "HEAD" or status in (204, 304):
        return status, reason, headers, b"", keep
    if chunked:
        parts = []
        total = 0
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass  # trailers
                break
            total += size
            if total > MAX_BODY:
                raise ValueError("answer too large")
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        return status, reason, headers, b"".join(parts), keep
    if length is not None:
        if length > MAX_BODY:
            raise ValueError("answer too large")
        return status, reason, headers, await reader.readexactly(length), keep
    return status, reason, headers, await reader.read(MAX_BODY), False
