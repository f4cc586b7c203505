"""Staged result bytes (see migrations/0001_result_blobs.sql)."""

from __future__ import annotations

import uuid

from aigen.eventstore.store import Conn

BLOB_SCHEME = "blob:"


def blob_url(blob_id: uuid.UUID) -> str:
    return f"{BLOB_SCHEME}{blob_id}"


def blob_id_of(url: str) -> uuid.UUID | None:
    if not url.startswith(BLOB_SCHEME):
        return None
    try:
        return uuid.UUID(url[len(BLOB_SCHEME) :])
    except ValueError:
        return None


async def put(conn: Conn, task_id: str, data: bytes, content_type: str) -> uuid.UUID:
    blob_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO result_blobs (id, task_id, content_type, data) VALUES (%s, %s, %s, %s)",
        (blob_id, task_id, content_type, data),
    )
    return blob_id


async def get(conn: Conn, blob_id: uuid.UUID) -> tuple[bytes, str] | None:
    row = await (
        await conn.execute("SELECT data, content_type FROM result_blobs WHERE id = %s", (blob_id,))
    ).fetchone()
    return (bytes(row[0]), row[1]) if row else None


async def delete_for_task(conn: Conn, task_id: str) -> None:
    await conn.execute("DELETE FROM result_blobs WHERE task_id = %s", (task_id,))
