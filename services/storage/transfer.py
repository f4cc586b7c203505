"""Copying a task's provider results into the object store, each with its own retries.

A URL result is downloaded through the SSRF guard and streamed straight into the store; staged
bytes are read from `result_blobs`. Each copy lands on its deterministic key, so trying again
overwrites rather than duplicates, and each finished copy is noted in `storage_copies`, so a
redelivered TaskCompleted reuses it instead of downloading again.

When a URL result cannot be copied (refused by the guard, gone, not media, or still failing after
the retries), the provider's URL stays the result, flagged `stored=false` with the error, as the
seed does. Staged bytes have no such fallback: their failure fails the delivery, so JetStream
brings the TaskCompleted back later with the bytes still staged; only the last allowed delivery
records them as not stored (and keeps them staged).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aigen.db.pool import Database
from aigen.netguard import NetGuard, NetGuardError
from aigen.objectstore.base import ObjectNotFound, ObjectStore, ObjectStoreError, StoredObject
from aigen.tasks.domain import TaskState
from aigen.v1 import events_pb2
from prometheus_client import Counter

from services.storage import domain
from services.storage.repository import CopyLog, staged_bytes

log = logging.getLogger("aigen.storage")

RESULTS = Counter("aigen_storage_results_total", "Provider results handled by storage", ["outcome"])
BYTES = Counter("aigen_storage_bytes_total", "Bytes copied into the object store")


@dataclass(frozen=True)
class CopyPolicy:
    attempts: int = 3
    backoff_base_s: float = 1.0
    backoff_max_s: float = 20.0
    url_ttl_s: int = 7 * 24 * 3600  # URLs recorded for private stores; readers re-sign by key
    parallel: int = 4


@dataclass(frozen=True)
class Copy:
    result: events_pb2.StoredResult
    staged: uuid.UUID | None = None  # staged bytes that now live in the store (to drop on commit)


class StagedBytesMissing(Exception):
    pass


class StagedCopyFailed(Exception):
    """Staged bytes could not be stored this time; the delivery is tried again later."""


class ResultCopier:
    def __init__(
        self,
        *,
        db: Database,
        store: ObjectStore,
        guard: NetGuard,
        policy: CopyPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.db = db
        self.store = store
        self.guard = guard
        self.copies = CopyLog(db)
        self.policy = policy or CopyPolicy()
        self.sleep = sleep

    async def copy_all(self, state: TaskState, *, last_chance: bool) -> list[Copy]:
        """One Copy per provider result, in order."""
        prefix = state.model.s3_path_prefix if state.model else ""
        jobs = domain.plan(state.model, state.provider_results)
        earlier = (
            await self.copies.copies(state.id)
            if any(j.action is not domain.Action.KEEP for j in jobs)
            else {}
        )
        gate = asyncio.Semaphore(self.policy.parallel)

        async def run(job: domain.Job) -> Copy:
            async with gate:
                return await self.copy_one(
                    state.id, prefix, job, earlier.get(job.index), last_chance=last_chance
                )

        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(run(job)) for job in jobs]
        except ExceptionGroup as failed:
            # One result failing stops the others; the delivery fails with that result's error.
            raise failed.exceptions[0] from None
        return [task.result() for task in tasks]

    async def copy_one(
        self,
        task_id: str,
        prefix: str,
        job: domain.Job,
        earlier: tuple[str, StoredObject] | None,
        *,
        last_chance: bool,
    ) -> Copy:
        if job.action is domain.Action.KEEP:
            RESULTS.labels("kept").inc()
            return Copy(domain.kept(job.result))
        if earlier is not None and earlier[0] == job.source and await self._still_there(earlier[1]):
            RESULTS.labels("reused").inc()
            return await self._copied(job, earlier[1])
        error = ""
        for attempt in range(1, self.policy.attempts + 1):
            try:
                obj = await self._attempt(task_id, prefix, job)
            except NetGuardError as exc:
                error = str(exc)
                if not exc.retryable:
                    break
            except (domain.NotMedia, StagedBytesMissing) as exc:
                error = str(exc)
                break
            except ObjectStoreError as exc:
                error = str(exc)
            else:
                await self.copies.remember(task_id, job.index, job.source, obj)
                RESULTS.labels("stored").inc()
                BYTES.inc(obj.size)
                return await self._copied(job, obj)
            if attempt < self.policy.attempts:
                delay = domain.backoff_s(attempt, self.policy.backoff_base_s, self.policy.backoff_max_s)
                log.info(
                    "result %d: attempt %d failed (%s); again in %.1fs", job.index, attempt, error, delay
                )
                await self.sleep(delay)
        if job.action is domain.Action.STAGED and not last_chance:
            raise StagedCopyFailed(f"result {job.index} (staged bytes) not stored: {error}")
        log.warning("result %d not stored, the provider's URL stays the result: %s", job.index, error)
        RESULTS.labels("fell_back").inc()
        return Copy(domain.fell_back(job.result, error))

    async def _copied(self, job: domain.Job, obj: StoredObject) -> Copy:
        url = await self.store.url(obj.key, expires_in_s=self.policy.url_ttl_s)
        return Copy(domain.stored(job.result, obj, url.url), job.blob_id)

    async def _still_there(self, obj: StoredObject) -> bool:
        try:
            info = await self.store.stat(obj.key)
        except (ObjectNotFound, ObjectStoreError):
            return False
        return info.size == obj.size

    async def _attempt(self, task_id: str, prefix: str, job: domain.Job) -> StoredObject:
        result = job.result
        if job.blob_id is not None:
            staged = await staged_bytes(self.db, job.blob_id)
            if staged is None:
                raise StagedBytesMissing(f"the staged bytes {job.source} are gone")
            data, staged_type = staged
            content_type = domain.content_type_for(staged_type, result.content_type, "", result.type)
            key = domain.object_key(
                prefix, task_id, job.index, domain.extension_for(content_type, "", result.type)
            )
            return await self.store.put_bytes(key, data, content_type=content_type)
        async with self.guard.stream(result.url) as response:
            response.raise_for_status()
            header = response.headers.get("content-type")
            domain.check_media(response.url, header)
            content_type = domain.content_type_for(header, result.content_type, response.url, result.type)
            extension = domain.extension_for(content_type, response.url, result.type)
            key = domain.object_key(prefix, task_id, job.index, extension)
            return await self.store.put(key, response.aiter_bytes(), content_type=content_type)
