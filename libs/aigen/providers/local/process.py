"""Running ffmpeg and espeak-ng as asyncio subprocesses, with progress and a time limit."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path

Progress = Callable[[float], None]

STDERR_LINES = 12


class ToolError(RuntimeError):
    """A program failed, timed out or could not start; the message says which and why."""


def progress_seconds(line: str) -> float | None:
    """Seconds encoded so far, from one line of ffmpeg's `-progress` output."""
    key, _, value = line.partition("=")
    # `out_time_ms` is microseconds too (a historical misnomer); prefer the explicit name.
    if key.strip() != "out_time_us":
        return None
    try:
        return max(0.0, int(value.strip()) / 1_000_000)
    except ValueError:
        return None  # "N/A" before the first frame


async def _pump_progress(
    stream: asyncio.StreamReader, duration: float | None, on_progress: Progress | None
) -> None:
    async for raw in stream:
        if on_progress is None or not duration:
            continue
        seconds = progress_seconds(raw.decode("utf-8", "replace"))
        if seconds is not None:
            # Never 1.0 from here: the file is only complete once the program exits cleanly.
            on_progress(min(0.99, seconds / duration))


async def _tail(stream: asyncio.StreamReader, keep: collections.deque[str]) -> None:
    async for raw in stream:
        line = raw.decode("utf-8", "replace").strip()
        if line:
            keep.append(line)


async def run_program(
    argv: Sequence[str],
    *,
    time_limit: float,
    cwd: Path | None = None,
    duration: float | None = None,
    on_progress: Progress | None = None,
) -> None:
    """Run `argv` to completion; raise `ToolError` with the end of its stderr when it fails.

    With `duration` and `on_progress`, ffmpeg's `-progress pipe:1` lines on stdout become
    progress callbacks (fraction of `duration` encoded). Cancellation kills the program.
    """
    name = os.path.basename(argv[0])
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        raise ToolError(f"{name} could not start: {exc}") from None
    assert process.stdout is not None
    assert process.stderr is not None
    stderr: collections.deque[str] = collections.deque(maxlen=STDERR_LINES)
    try:
        async with asyncio.timeout(time_limit):
            await asyncio.gather(
                _pump_progress(process.stdout, duration, on_progress),
                _tail(process.stderr, stderr),
                process.wait(),
            )
    except TimeoutError:
        raise ToolError(f"{name} did not finish within {time_limit:g} s") from None
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            # Reap it even when we are being cancelled, so no zombie outlives the job.
            await asyncio.shield(process.wait())
    if process.returncode != 0:
        detail = " | ".join(stderr) or "no error output"
        raise ToolError(f"{name} exited with status {process.returncode}: {detail}")
