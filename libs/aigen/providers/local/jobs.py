"""Jobs of the local service: kept on disk, run a few at a time, resumed after a restart.

Layout of the data folder:
    jobs/<id>/job.json    the request and its state (rewritten on each state change)
    jobs/<id>/input-N.*   input images, decoded or downloaded when the job was accepted
    jobs/<id>/work/       scratch space while the job runs
    files/<id>-N.<ext>    finished outputs, served over HTTP

A job that was queued or running when the service stopped is run again when it starts: its
request and inputs are all on disk, so nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import os
import re
import secrets
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aigen.providers.local import engines
from aigen.providers.local.tools import Toolbox

log = logging.getLogger("aigen.providers.local")

JOB_ID_RE = re.compile(r"^[a-z0-9]{16,40}$")


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED)


@dataclass
class OutputFile:
    name: str
    content_type: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Job:
    id: str
    model: str
    prompt: str
    number_of_outputs: int
    parameters: dict[str, Any]
    inputs: list[str] = field(default_factory=list)  # file names inside the job folder
    reference: str | None = None  # the caller's idempotency key
    status: JobStatus = JobStatus.QUEUED
    progress: float = 0.0
    outputs: list[OutputFile] = field(default_factory=list)
    error: str | None = None
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None

    @staticmethod
    def new_id() -> str:
        return secrets.token_hex(12)

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Job:
        outputs = [OutputFile(**o) for o in record.pop("outputs", [])]
        status = JobStatus(record.pop("status", JobStatus.QUEUED))
        return cls(**record, outputs=outputs, status=status)


class JobStore:
    """Job records and files on disk. Methods do blocking file I/O: call them in a thread."""

    def __init__(self, data_dir: Path) -> None:
        self.jobs_dir = data_dir / "jobs"
        self.files_dir = data_dir / "files"
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.files_dir.mkdir(parents=True, exist_ok=True)

    def job_dir(self, job_id: str) -> Path:
        return self.jobs_dir / job_id

    def work_dir(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "work"

    def save(self, job: Job) -> None:
        folder = self.job_dir(job.id)
        folder.mkdir(parents=True, exist_ok=True)
        scratch = folder / "job.json.tmp"
        scratch.write_text(json.dumps(job.to_record(), ensure_ascii=False))
        os.replace(scratch, folder / "job.json")  # a reader never sees half a record

    def load_all(self) -> list[Job]:
        jobs = []
        for record in sorted(self.jobs_dir.glob("*/job.json")):
            try:
                jobs.append(Job.from_record(json.loads(record.read_text())))
            except (OSError, ValueError, TypeError) as exc:
                log.warning("skipping unreadable job record %s: %s", record, exc)
        return jobs

    def reset_work_dir(self, job_id: str) -> Path:
        work = self.work_dir(job_id)
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        return work

    def remove_work_dir(self, job_id: str) -> None:
        shutil.rmtree(self.work_dir(job_id), ignore_errors=True)

    def remove(self, job: Job) -> None:
        for output in job.outputs:
            with contextlib.suppress(FileNotFoundError):
                (self.files_dir / output.name).unlink()
        shutil.rmtree(self.job_dir(job.id), ignore_errors=True)


class JobRunner:
    """Accepts jobs and runs them, at most `concurrency` at once."""

    def __init__(
        self,
        data_dir: Path,
        tools: Toolbox,
        *,
        concurrency: int = 2,
        job_timeout: float = 600.0,
        retention: float = 7 * 24 * 3600.0,
    ) -> None:
        self.store = JobStore(data_dir)
        self.tools = tools
        self.job_timeout = job_timeout
        self.retention = retention
        self._slots = asyncio.Semaphore(max(1, concurrency))
        self._jobs: dict[str, Job] = {}
        self._by_reference: dict[str, str] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._started = False
        self._last_sweep = 0.0
        for job in self.store.load_all():
            self._remember(job)

    # --- queries --------------------------------------------------------------------------------

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def by_reference(self, reference: str) -> Job | None:
        job_id = self._by_reference.get(reference)
        return self._jobs.get(job_id) if job_id else None

    def counts(self) -> dict[str, int]:
        counts = {status.value: 0 for status in JobStatus}
        for job in self._jobs.values():
            counts[job.status.value] += 1
        return counts

    def files_dir(self) -> Path:
        return self.store.files_dir

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Resume jobs a previous run left unfinished. Idempotent; needs a running loop."""
        if self._started:
            return
        self._started = True
        for job in sorted(self._jobs.values(), key=lambda j: j.created_at):
            if not job.status.finished:
                log.info("resuming job %s (%s) left %s by the previous run", job.id, job.model, job.status)
                job.status, job.progress = JobStatus.QUEUED, 0.0
                self._schedule(job)

    async def close(self) -> None:
        """Stop running jobs; they stay queued on disk and run again at the next start."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._started = False

    async def submit(self, job: Job) -> Job:
        """Record and queue a job; with a known reference, the job already made for it."""
        self.start()
        if job.reference:
            existing = self.by_reference(job.reference)
            if existing is not None:
                return existing
        await asyncio.to_thread(self.store.save, job)
        self._remember(job)
        self._schedule(job)
        await self._maybe_sweep()
        return job

    # --- running --------------------------------------------------------------------------------

    def _remember(self, job: Job) -> None:
        self._jobs[job.id] = job
        if job.reference:
            self._by_reference[job.reference] = job.id

    def _schedule(self, job: Job) -> None:
        task = asyncio.create_task(self._run(job), name=f"local-job-{job.id}")
        self._tasks[job.id] = task
        task.add_done_callback(lambda _t: self._tasks.pop(job.id, None))

    def _set_progress(self, job: Job, value: float) -> None:
        # Progress only moves forward, whatever order the engine's phases report in.
        job.progress = max(job.progress, min(0.99, value))

    async def _run(self, job: Job) -> None:
        async with self._slots:
            job.status, job.started_at, job.progress = JobStatus.RUNNING, time.time(), 0.0
            await asyncio.to_thread(self.store.save, job)
            try:
                work = await asyncio.to_thread(self.store.reset_work_dir, job.id)
                workspace = engines.Workspace(
                    job_id=job.id,
                    work_dir=work,
                    files_dir=self.store.files_dir,
                    tools=self.tools,
                    time_limit=self.job_timeout,
                    on_progress=lambda value: self._set_progress(job, value),
                )
                request = engines.RenderRequest(
                    model=job.model,
                    prompt=job.prompt,
                    number_of_outputs=job.number_of_outputs,
                    parameters=job.parameters,
                    inputs=[self.store.job_dir(job.id) / name for name in job.inputs],
                )
                produced = await engines.render(workspace, request)
            except asyncio.CancelledError:
                # Shutting down: leave the job queued on disk so the next start runs it again.
                job.status, job.progress, job.started_at = JobStatus.QUEUED, 0.0, None
                await asyncio.shield(asyncio.to_thread(self.store.save, job))
                raise
            except engines.EngineError as exc:
                self._finish(job, error=str(exc))
            except Exception as exc:
                log.exception("local job %s failed unexpectedly", job.id)
                self._finish(job, error=f"internal error: {type(exc).__name__}: {exc}")
            else:
                job.outputs = [OutputFile(p.name, p.content_type, dict(p.extra)) for p in produced]
                self._finish(job)
            await asyncio.to_thread(self.store.save, job)
            await asyncio.to_thread(self.store.remove_work_dir, job.id)

    def _finish(self, job: Job, *, error: str | None = None) -> None:
        job.finished_at = time.time()
        if error is None:
            job.status, job.progress = JobStatus.SUCCEEDED, 1.0
        else:
            job.status, job.error = JobStatus.FAILED, error
            log.warning("local job %s (%s) failed: %s", job.id, job.model, error)

    async def _maybe_sweep(self) -> None:
        """Forget finished jobs older than the retention period (their files were copied away)."""
        now = time.time()
        if now - self._last_sweep < min(3600.0, self.retention):
            return
        self._last_sweep = now
        expired = [
            job
            for job in self._jobs.values()
            if job.status.finished and job.finished_at is not None and now - job.finished_at > self.retention
        ]
        for job in expired:
            self._jobs.pop(job.id, None)
            if job.reference:
                self._by_reference.pop(job.reference, None)
            await asyncio.to_thread(self.store.remove, job)
