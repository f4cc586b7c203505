"""Serve an ASGI app on a free loopback port inside the running event loop (tests, simulator)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import urllib.parse
from collections.abc import AsyncIterator, Callable, Mapping
from http import HTTPStatus
from typing import Any

import uvicorn

from aigen.simulator.base import FakeProvider


def reserve_port(host: str = "127.0.0.1") -> socket.socket:
    """A listening socket on a free port, for a server started later (`serve_asgi(sock=…)`).

    Picking a free port and binding it later races with every connection opened meanwhile: the
    kernel may hand that port to one of them as its source port. A socket held from the start
    cannot lose it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    sock.listen(128)
    return sock


@contextlib.asynccontextmanager
async def serve_asgi(
    app: Any, host: str = "127.0.0.1", port: int = 0, *, sock: socket.socket | None = None
) -> AsyncIterator[str]:
    """Run `app` until the block exits (on `sock` when given); yields its base URL."""
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock] if sock is not None else None))
    while not server.started:
        if task.done():
            task.result()  # surfaces the start-up error
        await asyncio.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def serve_fake(
    fake: FakeProvider, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[FakeProvider]:
    """Serve one fake provider; its `base_url` points at the live server inside the block."""
    async with serve_asgi(fake, host, port) as url:
        fake.base_url = url
        yield fake


# A fast answer: the request's path and query and its Authorization header → a JSON body to send
# with 200, or None to let the ASGI app answer.
FastPath = Callable[[str, Mapping[str, str], str], bytes | None]


@contextlib.asynccontextmanager
async def serve_lean(app: Any, fast: FastPath, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """Like `serve_asgi`, but requests `fast` answers skip the HTTP and ASGI stacks.

    For load tests: uvicorn (h11) and Starlette cost the benchmark process close to a millisecond
    of CPU per request, enough for the fake to become what a poller benchmark measures. This is a
    minimal keep-alive HTTP/1.1 server: requests in order per connection, bodies by Content-Length
    (what aigen's clients send); whatever `fast` declines goes to `app` through a small ASGI call."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _LeanProtocol(app, fast), host, 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{port}"
    finally:
        server.close()
        await server.wait_closed()


class _LeanProtocol(asyncio.Protocol):
    def __init__(self, app: Any, fast: FastPath) -> None:
        self.app = app
        self.fast = fast
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.busy: asyncio.Task[None] | None = None  # an ASGI answer in progress

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.busy is not None:
            self.busy.cancel()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._serve()

    def _serve(self) -> None:
        while self.busy is None and self.transport is not None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1").split("\r\n")
            method, target, _ = head[0].split(" ", 2)
            headers = []
            length = 0
            for line in head[1:]:
                name, _, value = line.partition(":")
                name, value = name.strip().lower(), value.strip()
                headers.append((name, value))
                if name == "content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            path, _, query = target.partition("?")
            answer = None
            if method == "GET" and not body:
                authorization = next((v for k, v in headers if k == "authorization"), "")
                answer = self.fast(path, dict(urllib.parse.parse_qsl(query)), authorization)
            if answer is not None:
                self._write(200, [(b"content-type", b"application/json")], answer)
            else:
                self.busy = asyncio.get_running_loop().create_task(
                    self._asgi(method, path, query, headers, body)
                )

    def _write(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        if self.transport is None:
            return
        lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}".encode()]
        for name, value in headers:
            if name.lower() not in (b"content-length", b"transfer-encoding", b"connection"):
                lines.append(name + b": " + value)
        lines.append(b"content-length: " + str(len(body)).encode())
        self.transport.write(b"\r\n".join(lines) + b"\r\n\r\n" + body)

    async def _asgi(
        self, method: str, path: str, query: str, headers: list[tuple[str, str]], body: bytes
    ) -> None:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": urllib.parse.unquote(path),
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers],
            "client": None,
            "server": None,
        }
        sent = False
        status = 500
        response_headers: list[tuple[bytes, bytes]] = []
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.Future()  # no disconnect to report: wait until cancelled
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status, response_headers
            if message["type"] == "http.response.start":
                status = message["status"]
                response_headers = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        try:
            await self.app(scope, receive, send)
        except Exception:
            status, response_headers, chunks = 500, [], [b"internal error"]
        self._write(status, response_headers, b"".join(chunks))
        self.busy = None
        self._serve()
