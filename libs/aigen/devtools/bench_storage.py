"""Benchmark: storing one large result, next to a plain boto3 upload of the same file.

    python -m aigen.devtools.bench_storage [--size-mb 1024] [--part-mb 8]

Generates a file, serves it over local HTTP, starts moto's S3 server, then measures in two fresh
child processes (so neither run inherits the other's memory):
- aigen: the storage path — guarded download streamed into `S3Store.put` (multipart as bytes
  arrive), as the storage service copies a provider result;
- boto3: `upload_file` of the same file from disk (boto3's own threaded multipart transfer).
Prints throughput (MB/s) and peak RSS growth for each, and their ratios. Asserts nothing:
figures depend on the machine, and moto itself is usually the bottleneck.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

MB = 1024 * 1024
CREDENTIALS = {"access_key_id": "bench", "secret_access_key": "bench-secret"}


# --- measuring ------------------------------------------------------------------------------------


def rss_bytes() -> int:
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except ImportError:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRss:
    """Samples this process's RSS every few milliseconds while a block runs."""

    def __init__(self, every_s: float = 0.005) -> None:
        self.every_s = every_s
        self.baseline = 0
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(self.every_s)

    def __enter__(self) -> PeakRss:
        self.baseline = self.peak = rss_bytes()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())

    @property
    def growth(self) -> int:
        return self.peak - self.baseline


def timed(run: Callable[[], Any]) -> dict[str, float]:
    with PeakRss() as memory:
        started = time.perf_counter()
        outcome = run()
        seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "rss_growth": memory.growth,
        "baseline_rss": memory.baseline,
        **(outcome or {}),
    }


# --- the two contenders (each in its own child process) ---------------------------------------------


def run_aigen(args: argparse.Namespace, *, from_disk: bool = False) -> dict[str, Any]:
    """The storage path: the guarded download streamed into S3Store.put (or, `from_disk`, the
    same put fed from the file, to separate the upload's cost from the download's)."""
    from aigen.netguard import AllowList, NetGuard
    from aigen.objectstore import S3Store

    store = S3Store(
        args.bucket,
        endpoint_url=args.endpoint,
        region="us-east-1",
        part_size=args.part_mb * MB,
        max_parts_in_flight=args.parts_in_flight,
        access_key_id=CREDENTIALS["access_key_id"],
        secret_access_key=CREDENTIALS["secret_access_key"],
    )
    guard = NetGuard(allow=AllowList.parse("127.0.0.1"), max_bytes=args.size + 1, read_timeout_s=600)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(store.exists("warm-up"))  # the boto3 client exists before measuring

    async def file_chunks() -> AsyncIterator[bytes]:
        source = await asyncio.to_thread(Path(args.file).open, "rb")
        try:
            while chunk := await asyncio.to_thread(source.read, MB):
                yield chunk
        finally:
            source.close()

    async def copy() -> dict[str, Any]:
        if from_disk:
            stored = await store.put("bench/aigen-disk.bin", file_chunks(), content_type="video/mp4")
        else:
            async with guard.stream(args.url) as response:
                response.raise_for_status()
                stored = await store.put("bench/aigen.bin", response.aiter_bytes(), content_type="video/mp4")
        return {"size": stored.size, "sha256": stored.sha256}

    try:
        return timed(lambda: loop.run_until_complete(copy()))
    finally:
        loop.run_until_complete(store.close())
        loop.close()


def run_boto3(args: argparse.Namespace) -> dict[str, Any]:
    import boto3

    client = boto3.session.Session().client(
        "s3",
        endpoint_url=args.endpoint,
        region_name="us-east-1",
        aws_access_key_id=CREDENTIALS["access_key_id"],
        aws_secret_access_key=CREDENTIALS["secret_access_key"],
    )
    client.head_bucket(Bucket=args.bucket)

    def upload() -> dict[str, Any]:
        client.upload_file(args.file, args.bucket, "bench/boto3.bin")
        return {"size": client.head_object(Bucket=args.bucket, Key="bench/boto3.bin")["ContentLength"]}

    return timed(upload)


CHILDREN: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "aigen": run_aigen,
    "aigen-disk": lambda args: run_aigen(args, from_disk=True),
    "boto3": run_boto3,
}


# --- the harness ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - a local URL we built
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@contextlib.contextmanager
def process(args: list[str]) -> Iterator[subprocess.Popen[bytes]]:
    child = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield child
    finally:
        child.terminate()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()


def make_file(path: Path, size: int) -> str:
    """`size` bytes of incompressible data (a random 1 MB block, repeated); returns the sha256."""
    block = os.urandom(MB)
    digest = hashlib.sha256()
    with path.open("wb") as out:
        left = size
        while left > 0:
            piece = block[: min(MB, left)]
            out.write(piece)
            digest.update(piece)
            left -= len(piece)
    return digest.hexdigest()


def child(kind: str, common: list[str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "aigen.devtools.bench_storage", "--child", kind, *common],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the {kind} run failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


LABELS = {
    "aigen": "aigen: HTTP → S3Store.put",
    "aigen-disk": "aigen: file → S3Store.put",
    "boto3": "boto3 upload_file (file)",
}


def report(size: int, sha256: str, runs: dict[str, dict[str, Any]], part_mb: int, in_flight: int) -> None:
    def speed(run: dict[str, Any]) -> float:
        return size / MB / float(run["seconds"])

    print(
        f"Result storage: {size / MB:.0f} MB into moto's S3 server over HTTP; "
        f"parts of {part_mb} MB, {in_flight} in flight"
    )
    print(f"{'':30}{'MB/s':>8}{'seconds':>10}{'peak RSS growth':>18}")
    for name, run in runs.items():
        print(f"{LABELS[name]:30}{speed(run):>8.1f}{run['seconds']:>10.1f}{run['rss_growth'] / MB:>15.1f} MB")
    boto = runs["boto3"]
    for name in ("aigen", "aigen-disk"):
        run = runs[name]
        print(
            f"{LABELS[name]} vs boto3: throughput x{speed(run) / speed(boto):.2f}, "
            f"memory x{run['rss_growth'] / max(1, boto['rss_growth']):.2f}"
        )
    complete = all(run["size"] == size for run in runs.values()) and all(
        runs[name]["sha256"] == sha256 for name in ("aigen", "aigen-disk")
    )
    print(f"objects complete and identical to the source: {'yes' if complete else 'NO'}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--part-mb", type=int, default=8)
    parser.add_argument("--parts-in-flight", type=int, default=4)
    parser.add_argument("--child", choices=list(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--bucket", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(CHILDREN[args.child](args)))
        return

    size = args.size_mb * MB
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory(prefix="aigen-bench-") as tmp:
        source = Path(tmp) / "result.mp4"
        print(f"writing {args.size_mb} MB to {source} …", flush=True)
        sha256 = make_file(source, size)
        files_port, s3_port = free_port(), free_port()
        http_server = [
            sys.executable,
            "-m",
            "http.server",
            str(files_port),
            "--bind",
            "127.0.0.1",
            "--directory",
            tmp,
        ]
        moto = [str(bin_dir / "moto_server"), "-H", "127.0.0.1", "-p", str(s3_port)]
        with process(http_server), process(moto):
            endpoint = f"http://127.0.0.1:{s3_port}"
            wait_http(f"http://127.0.0.1:{files_port}/")
            wait_http(f"{endpoint}/moto-api/")
            import boto3

            boto3.session.Session().client(
                "s3",
                endpoint_url=endpoint,
                region_name="us-east-1",
                aws_access_key_id=CREDENTIALS["access_key_id"],
                aws_secret_access_key=CREDENTIALS["secret_access_key"],
            ).create_bucket(Bucket="bench")
            common = [
                "--endpoint", endpoint,
                "--bucket", "bench",
                "--url", f"http://127.0.0.1:{files_port}/result.mp4",
                "--file", str(source),
                "--size", str(size),
                "--part-mb", str(args.part_mb),
                "--parts-in-flight", str(args.parts_in_flight),
            ]  # fmt: skip
            runs = {}
            for name in CHILDREN:
                print(f"running {name} …", flush=True)
                runs[name] = child(name, common)
    report(size, sha256, runs, args.part_mb, args.parts_in_flight)


if __name__ == "__main__":
    main()
