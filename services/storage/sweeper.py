"""Removes uploads a crash left unfinished: `.part` files of the local store, multipart uploads
in S3 (billed until aborted). Runs at start and then on a slow schedule; every replica may run it,
since removing an abandoned upload twice is harmless and an upload in progress is never old enough.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aigen.objectstore import ObjectStore, ObjectStoreError

log = logging.getLogger("aigen.storage.sweeper")


class AbandonedUploadSweeper:
    def __init__(self, store: ObjectStore, *, older_than_s: float, every_s: float) -> None:
        self.store = store
        self.older_than_s = older_than_s
        self.every_s = every_s

    async def sweep_once(self) -> int:
        try:
            removed = await self.store.sweep_abandoned(self.older_than_s)
        except ObjectStoreError as exc:
            # The store being unreachable is reported by the copies that need it; try again later.
            log.warning("abandoned uploads not swept: %s", exc)
            return 0
        if removed:
            log.info("removed %d abandoned upload(s) older than %.0f s", removed, self.older_than_s)
        return removed

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.sweep_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.every_s)
