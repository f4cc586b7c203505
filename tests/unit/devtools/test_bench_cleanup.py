"""Benchmarks stopped with SIGTERM still run their clean-up (service processes, embedded servers)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

SCRIPT = """
import sys, time
from aigen.devtools.servers import exit_cleanly_on_sigterm
exit_cleanly_on_sigterm()
try:
    print("ready", flush=True)
    time.sleep(60)
finally:
    print("cleaned up", flush=True)
"""


def test_sigterm_runs_the_finally_blocks_and_exits_with_the_signal_code():
    child = subprocess.Popen([sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    time.sleep(0.1)
    child.send_signal(signal.SIGTERM)
    out, _ = child.communicate(timeout=30)
    assert "cleaned up" in out
    assert child.returncode == 128 + signal.SIGTERM
