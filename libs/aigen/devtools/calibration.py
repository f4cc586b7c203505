"""How fast this machine is right now, as one figure printed next to every benchmark's results.

The benchmarks run on shared virtual machines: the same code on the same kind of machine has
measured three times slower on one day than on another (a slower or busier host, not the code).
A fixed pure-Python workload of the sort the services do all day (build dicts, JSON out and back,
small objects) timed in CPU time before and after a run tells two runs apart: figures taken at
a similar reference time compare; at very different ones, compare ratios (Generate/append, CPU
per task divided by the reference) rather than rates.
"""

from __future__ import annotations

import contextlib
import json
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class _Item:
    id: int
    name: str
    values: tuple[int, ...]


def _workload() -> int:
    total = 0
    for i in range(5_000):
        encoded = json.dumps({"id": i, "name": f"task-{i}", "values": [i, i + 1, i + 2]})
        decoded = json.loads(encoded)
        item = _Item(decoded["id"], decoded["name"], tuple(decoded["values"]))
        total += len(item.name) + sum(item.values)
    return total


def reference_ms(repeats: int = 5) -> float:
    """CPU milliseconds of the reference workload (median of `repeats`): lower is faster."""
    spent = []
    for _ in range(repeats):
        started = time.process_time()
        _workload()
        spent.append((time.process_time() - started) * 1000)
    return statistics.median(spent)


def describe(before: float, after: float | None = None) -> str:
    """One line for a benchmark's output."""
    measured = f"{before:.0f} ms"
    if after is not None:
        measured += f" before, {after:.0f} ms after the run"
    return (
        f"machine speed: reference workload {measured} (CPU time, aigen.devtools.calibration; lower "
        "is faster; compare rates only between runs with similar figures)"
    )


@contextlib.contextmanager
def calibrated() -> Iterator[None]:
    """Print the machine's speed before a benchmark and again, with the first, after it."""
    before = reference_ms()
    print(describe(before), flush=True)
    yield
    print(describe(before, reference_ms()), flush=True)
