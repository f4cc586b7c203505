"""The storage service's own table (storage_copies) and the staged bytes it consumes."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from aigen.db.pool import Database
from aigen.eventstore.store import Conn
from aigen.objectstore.base import StoredObject
from aigen.tasks import blobs


class CopyLog:
    """Which results of a task already sit in the object store, and from where they came."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def copies(self, task_id: str) -> dict[int, tuple[str, StoredObject]]:
        async with self.db.connection() as conn:
            rows = await (
                await conn.execute(
                    "SELECT result_index, source, object_key, size, sha256, content_type "
                    "FROM storage_copies WHERE task_id = %s",
                    (task_id,),
                )
            ).fetchall()
        return {row[0]: (row[1], StoredObject(row[2], row[3], row[4], row[5])) for row in rows}

    async def remember(self, task_id: str, index: int, source: str, obj: StoredObject) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO storage_copies "
                "(task_id, result_index, source, object_key, size, sha256, content_type) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (task_id, result_index) DO UPDATE SET source = excluded.source, "
                "object_key = excluded.object_key, size = excluded.size, sha256 = excluded.sha256, "
                "content_type = excluded.content_type, copied_at = now()",
                (task_id, index, source, obj.key, obj.size, obj.sha256, obj.content_type),
            )


async def staged_bytes(db: Database, blob_id: uuid.UUID) -> tuple[bytes, str] | None:
    async with db.connection() as conn:
        return await blobs.get(conn, blob_id)


async def drop_staged(conn: Conn, blob_ids: Sequence[uuid.UUID]) -> None:
    """Delete staged bytes that now live in the object store (inside the ResultsStored commit)."""
    if blob_ids:
        await conn.execute("DELETE FROM result_blobs WHERE id = ANY(%s)", (list(blob_ids),))
