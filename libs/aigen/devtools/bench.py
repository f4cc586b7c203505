"""`make bench`: every benchmark, one after another, each in its own process.

Each prints its figures next to a baseline measured in the same run (raw INSERTs, plain boto3,
direct gRPC) as ratios. Nothing here asserts a speed: see docs/benchmarks.md for recorded runs.
Pass names to run only some: `python -m aigen.devtools.bench eventstore pipeline`.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time

BENCHES = {
    "eventstore": ["aigen.devtools.bench_eventstore"],
    "pipeline": ["aigen.devtools.bench_pipeline"],
    "storage": ["aigen.devtools.bench_storage"],
    "gateway": ["aigen.devtools.bench_gateway"],
}


def main(argv: list[str]) -> int:
    wanted = argv or list(BENCHES)
    unknown = [name for name in wanted if name not in BENCHES]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHES)}", file=sys.stderr)
        return 2
    failed = []
    for name in wanted:
        module, *args = BENCHES[name]
        if importlib.util.find_spec(module) is None:
            print(f"\n=== {name}: not available in this installation ({module} missing)")
            continue
        print(f"\n=== {name} ({time.strftime('%Y-%m-%d %H:%M:%S')})", flush=True)
        code = subprocess.call([sys.executable, "-m", module, *args])
        if code != 0:
            failed.append(name)
    if failed:
        print(f"\nbenchmarks that did not complete: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
