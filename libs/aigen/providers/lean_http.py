"""A lean HTTP/1.1 transport for provider calls (status checks and submissions).

A status check or a submission is a small request with a small JSON answer, hundreds or thousands
a second. Under httpx's
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
import json as jsonlib
import os
import re
import ssl
import time
import urllib.parse
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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
        url = request.url
        origin = (url.raw_scheme, url.raw_host, url.port or (443 if url.scheme == "https" else 80))
        status, reason, headers, content = await self.exchange(
            request.method,
            origin,
            _request_head(request),
            request.content,
            request.extensions.get("timeout", {}),
            request,
        )
        return httpx.Response(
            status,
            headers=headers,
            stream=httpx.ByteStream(content),
            request=request,
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": reason},
        )

    async def exchange(
        self,
        method: str,
        origin: tuple[bytes, bytes, int],
        head: bytes,
        body: bytes,
        timeouts: dict[str, float | None],
        request: httpx.Request | None = None,
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]], bytes]:
        """One request (its head already serialised) on a kept-alive or new connection to
        `origin`: status, reason, headers and the body as received (not yet decoded)."""
        reused = self._take_idle(origin)
        if reused is not None:
            try:
                return await self._exchange(reused, origin, method, head, body, timeouts, request)
            except _ServerClosed:
                if method not in IDEMPOTENT:
                    raise httpx.RemoteProtocolError(
                        "Server disconnected without sending a response.", request=request
                    ) from None
        connection = await self._connect(origin, request, timeouts.get("connect"))
        try:
            return await self._exchange(connection, origin, method, head, body, timeouts, request)
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
        self, origin: tuple[bytes, bytes, int], request: httpx.Request | None, timeout: float | None
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
        method: str,
        head: bytes,
        body: bytes,
        timeouts: dict[str, float | None],
        request: httpx.Request | None,
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]], bytes]:
        done = False
        try:
            try:
                connection.writer.write(head + body if len(body) < 65536 else head)
                if len(body) >= 65536:
                    connection.writer.write(body)
                # Small requests leave nothing buffered: the write went out whole, no wait to time.
                if connection.writer.transport.get_write_buffer_size():
                    async with asyncio.timeout(timeouts.get("write")):
                        await connection.writer.drain()
            except TimeoutError as exc:
                raise httpx.WriteTimeout("write timed out", request=request) from exc
            except OSError as exc:
                raise _ServerClosed from exc
            try:
                async with asyncio.timeout(timeouts.get("read")):
                    status, reason, headers, content, keep = await _read_response(connection.reader, method)
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
        return status, reason, headers, content

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


class LeanClient(httpx.AsyncClient):
    """httpx's client, with a short path to the lean transport for plain requests.

    After the transport, httpx's client layer was the largest cost left in a check (profiled:
    URL parsing and normalising, merging, the cookie jar, the auth and redirect machinery). A
    plain request — a URL string of plain ASCII, text parameters, a JSON body or none, no files,
    form data, per-request cookies, auth or redirects, and no proxy configured — is written
    straight to the connection here; anything else goes through httpx unchanged. What differs on
    the short path: cookies a server sets are not kept (provider APIs authenticate by header)."""

    def __init__(self, transport: LeanTransport, **kwargs: Any) -> None:
        super().__init__(transport=transport, **kwargs)
        self.lean = transport
        # Proxies from the environment are mounts: with any, every request takes httpx's path.
        self._short = not getattr(self, "_mounts", True) and self.auth is None
        self._default_headers = [
            (name.lower(), value) for name, value in self.headers.raw if name.lower() != b"host"
        ]

    async def request(
        self,
        method: str,
        url: httpx.URL | str,
        *,
        content: Any = None,
        data: Any = None,
        files: Any = None,
        json: Any = None,
        params: Any = None,
        headers: Any = None,
        cookies: Any = None,
        auth: Any = httpx.USE_CLIENT_DEFAULT,
        follow_redirects: Any = httpx.USE_CLIENT_DEFAULT,
        timeout: Any = httpx.USE_CLIENT_DEFAULT,
        extensions: Any = None,
    ) -> httpx.Response:
        short = (
            self._short
            and content is None
            and data is None
            and files is None
            and cookies is None
            and (headers is None or isinstance(headers, Mapping))
            and auth is httpx.USE_CLIENT_DEFAULT
            and follow_redirects in (httpx.USE_CLIENT_DEFAULT, False)
            and not extensions
            and not self.cookies
            and not any(self.event_hooks.values())
        )
        target = _plain_target(url, params) if short and isinstance(url, str) else None
        if target is None:
            return await super().request(
                method,
                url,
                content=content,
                data=data,
                files=files,
                json=json,
                params=params,
                headers=headers,
                cookies=cookies,
                auth=auth,
                follow_redirects=follow_redirects,
                timeout=timeout,
                extensions=extensions,
            )
        scheme, host, port, path = target
        body = b""
        extra: list[tuple[bytes, bytes]] = []
        if json is not None:
            # As httpx encodes a JSON body.
            body = jsonlib.dumps(json, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
            extra.append((b"content-type", b"application/json"))
        if body or method in ("POST", "PUT", "PATCH"):
            extra.append((b"content-length", str(len(body)).encode()))
        given = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
        names = {name for name, _ in given} | {name for name, _ in extra}
        default_port = 443 if scheme == b"https" else 80
        lines = [
            method.encode("ascii") + b" " + path + b" HTTP/1.1",
            b"host: " + (host if port == default_port else host + b":" + str(port).encode()),
        ]
        lines.extend(name + b": " + value for name, value in self._default_headers if name not in names)
        lines.extend(name + b": " + value for name, value in extra)
        lines.extend(name + b": " + value for name, value in given if name not in (b"host",))
        head = b"\r\n".join(lines) + b"\r\n\r\n"
        timeouts = (self.timeout if timeout is httpx.USE_CLIENT_DEFAULT else httpx.Timeout(timeout)).as_dict()
        status, reason, response_headers, raw = await self.lean.exchange(
            method, (scheme, host, port), head, body, timeouts
        )
        response = httpx.Response(
            status,
            headers=response_headers,
            stream=httpx.ByteStream(raw),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": reason},
        )
        response.read()  # decodes gzip and the like, as httpx's client does (bytes in hand: no await)
        return response


def _plain_target(url: str, params: Any) -> tuple[bytes, bytes, int, bytes] | None:
    """Scheme, host, port and request target of a plain URL, or None when httpx should handle it
    (non-ASCII, spaces or other characters httpx would escape, user info, non-text params)."""
    if not url.isascii() or not _PLAIN_URL.fullmatch(url):
        return None
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        return None
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    target = parts.path or "/"
    query = parts.query
    if params:
        if query or not isinstance(params, Mapping):
            return None  # how a query and params combine is httpx's business
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in params.items()):
            return None
        query = urllib.parse.urlencode(params)
    if query:
        target += "?" + query
    return parts.scheme.encode(), parts.hostname.encode(), port, target.encode()


# Characters a URL may hold without httpx changing them (RFC 3986 unreserved, reserved, and %).
_PLAIN_URL = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*")


def provider_http_client(in_flight: int) -> httpx.AsyncClient:
    """The process's client for provider calls: the lean transport, or httpx's own with
    `AIGEN_PROVIDER_HTTP=httpx`. Sized so `in_flight` concurrent calls each keep a connection."""
    from aigen.providers.base import make_http_client  # late: base imports the adapters' helpers

    if os.environ.get("AIGEN_PROVIDER_HTTP", "lean") == "httpx":
        return make_http_client()
    limits = httpx.Limits(max_connections=max(200, in_flight), max_keepalive_connections=max(50, in_flight))
    return make_http_client(transport=LeanTransport(limits=limits), client_class=LeanClient)
