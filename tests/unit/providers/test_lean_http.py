"""The poller's lean HTTP transport against a scripted local server: what an adapter sees must be
what httpx's own transport gives (status, headers, decoded body, the same error types)."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from aigen.providers.lean_http import LeanClient, LeanTransport

# Request head, body, its number on its connection → the raw answer (None: hang up).
Answer = Callable[[bytes, bytes, int], bytes | None]


@contextlib.asynccontextmanager
async def scripted_server(answer: Answer) -> AsyncIterator[tuple[str, list[int]]]:
    """A keep-alive HTTP/1.1 server; yields its URL and, per connection, how many requests it
    served."""
    served: list[int] = []

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        index = len(served)
        served.append(0)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length) if length else b""
                served[index] += 1
                raw = answer(head, body, served[index])
                if raw is None:
                    break
                writer.write(raw)
                await writer.drain()
                if b"connection: close" in raw.lower():
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(client, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", served
    finally:
        server.close()


def json_answer(body: bytes, *extra: bytes) -> bytes:
    head = [b"HTTP/1.1 200 OK", b"content-type: application/json", b"content-length: %d" % len(body), *extra]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


def client_for(transport: LeanTransport, timeout: float = 5.0) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=transport, timeout=timeout)


async def test_a_status_check_round_trip_reuses_its_connection():
    seen: list[bytes] = []

    def answer(head: bytes, body: bytes, nth: int) -> bytes:
        seen.append(head)
        return json_answer(b'{"code":200,"data":{"state":"generating"}}')

    async with scripted_server(answer) as (url, served), client_for(LeanTransport()) as client:
        for _ in range(3):
            reply = await client.get(
                url + "/api/v1/jobs/recordInfo",
                params={"taskId": "t 1"},
                headers={"Authorization": "Bearer k"},
            )
            assert reply.status_code == 200
            assert reply.json() == {"code": 200, "data": {"state": "generating"}}
            assert reply.headers["content-type"] == "application/json"
    assert served == [3]  # one connection, kept alive
    first = seen[0].decode()
    assert first.startswith("GET /api/v1/jobs/recordInfo?taskId=t+1 HTTP/1.1\r\n")
    assert "\r\nauthorization: bearer k\r\n" in first.lower()
    assert f"host: {url.removeprefix('http://')}" in first.lower()


async def test_chunked_and_gzip_answers_are_decoded_as_httpx_does():
    payload = gzip.compress(b'{"ok":true}')
    chunks = (
        b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (payload[:5], payload[5:])) + b"0\r\n\r\n"
    )

    def answer(head: bytes, body: bytes, nth: int) -> bytes:
        return b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-encoding: gzip\r\n\r\n" + chunks

    async with scripted_server(answer) as (url, served), client_for(LeanTransport()) as client:
        assert (await client.get(url + "/x")).json() == {"ok": True}
        assert (await client.get(url + "/x")).json() == {"ok": True}
    assert served == [2]


async def test_a_post_body_arrives_and_connection_close_is_honoured():
    bodies: list[bytes] = []

    def answer(head: bytes, body: bytes, nth: int) -> bytes:
        bodies.append(body)
        return json_answer(b"{}", b"connection: close")

    async with scripted_server(answer) as (url, served), client_for(LeanTransport()) as client:
        assert (await client.post(url + "/submit", json={"a": 1})).status_code == 200
        assert (await client.post(url + "/submit", json={"a": 2})).status_code == 200
    assert [httpx.Response(200, content=b).json() for b in bodies] == [{"a": 1}, {"a": 2}]
    assert served == [1, 1]  # the server said close: a new connection each time


async def test_a_kept_connection_the_server_dropped_is_replaced_for_a_check_not_for_a_post():
    # Each connection answers one request, then hangs up on the next without a word: what a
    # server closing an idle keep-alive connection looks like when the client writes first.
    def answer(head: bytes, body: bytes, nth: int) -> bytes | None:
        return json_answer(b'{"ok":1}') if nth == 1 else None

    async with scripted_server(answer) as (url, served), client_for(LeanTransport()) as client:
        assert (await client.get(url + "/a")).status_code == 200
        assert (await client.get(url + "/b")).json() == {"ok": 1}  # sent again on a new connection
        assert served == [2, 1]
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post(url + "/c", content=b"paid work")  # maybe received: not resent
        assert served == [2, 2]


async def test_transport_errors_are_httpx_errors():
    def hang_up(head: bytes, body: bytes, nth: int) -> bytes | None:
        return None

    async with scripted_server(hang_up) as (url, _), client_for(LeanTransport()) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(url + "/x")
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post(url + "/x", content=b"data")

    listener = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    listener.close()
    await listener.wait_closed()
    async with client_for(LeanTransport()) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{port}/x")


async def test_a_silent_server_is_a_read_timeout():
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with client_for(LeanTransport(), timeout=0.2) as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.get(f"http://127.0.0.1:{port}/x")
    finally:
        server.close()


def lean_client(timeout: float = 5.0) -> LeanClient:
    return LeanClient(transport=LeanTransport(), timeout=timeout, headers={"User-Agent": "aigen/0.1"})


def plain_httpx_client(timeout: float = 5.0) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=LeanTransport(), timeout=timeout, headers={"User-Agent": "aigen/0.1"})


def parsed(head: bytes) -> tuple[str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    fields = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
    return lines[0], fields


@pytest.mark.parametrize(
    ("method", "url_path", "kwargs"),
    [
        (
            "GET",
            "/api/v1/jobs/recordInfo",
            {"params": {"taskId": "task_kie_17"}, "headers": {"Authorization": "Bearer k"}},
        ),
        ("GET", "/v1/status?x=1", {"params": {"id": "a/b c"}}),
        (
            "POST",
            "/api/v1/jobs/createTask",
            {"json": {"model": "m", "input": {"prompt": "é"}}, "headers": {"X-A": "1"}},
        ),
        ("GET", "/path with space", {}),  # httpx's own path: it escapes the space
        ("GET", "/p", {"params": {"n": 3}}),  # not text: httpx's own path
    ],
)
async def test_the_short_path_sends_what_httpx_sends(method, url_path, kwargs):
    seen: list[tuple[bytes, bytes]] = []

    def answer(head: bytes, body: bytes, nth: int) -> bytes:
        seen.append((head, body))
        return (
            b"HTTP/1.1 201 Created\r\ncontent-encoding: gzip\r\ncontent-length: %d\r\n\r\n" % len(gzipped)
            + gzipped
        )

    gzipped = gzip.compress(b'{"ok":true}')
    async with scripted_server(answer) as (url, _):
        replies = []
        for make in (plain_httpx_client, lean_client):
            async with make() as client:
                reply = await client.request(method, url + url_path, **kwargs)
                replies.append((reply.status_code, reply.json(), reply.headers["content-encoding"]))
    assert replies[0] == replies[1] == (201, {"ok": True}, "gzip")
    (head_httpx, body_httpx), (head_lean, body_lean) = seen
    assert parsed(head_httpx) == parsed(head_lean)
    assert body_httpx == body_lean


async def test_a_status_check_takes_the_short_path(monkeypatch):
    def answer(head: bytes, body: bytes, nth: int) -> bytes:
        return json_answer(b'{"code":200}')

    async def not_httpx(*args, **kwargs):
        raise AssertionError("went through httpx's client path")

    async with scripted_server(answer) as (url, _), lean_client() as client:
        monkeypatch.setattr(client, "send", not_httpx)
        reply = await client.request(
            "GET",
            url + "/api/v1/jobs/recordInfo",
            params={"taskId": "t1"},
            headers={"Authorization": "Bearer k"},
        )
        assert reply.json() == {"code": 200}
