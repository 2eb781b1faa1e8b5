"""Ctrl-C stops `paylinks office` whichever of its threads the kernel hands the signal to.

Python runs signal handlers in the main thread only. When the kernel delivers SIGINT to another
thread (the office has many: its server, the emulator, webhooks, Prefect), a main thread blocked in
an untimed wait never runs the handler: twice, in full suites on a loaded machine, the office was
still running 60 and 90 s after Ctrl-C. Here the main thread blocks SIGINT, so the kernel must
hand it to the other thread, as it sometimes does under load.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

WAITER = """
import signal, threading, time
from cli.local_club import wait_until_interrupted
threading.Thread(target=time.sleep, args=(60,), daemon=True).start()  # takes the signal
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})  # the main thread does not
try:
    print("waiting", flush=True)
    wait_until_interrupted()
except KeyboardInterrupt:
    print("stopped", flush=True)
"""


def test_ctrl_c_ends_the_wait_even_when_another_thread_receives_it():
    waiter = subprocess.Popen(
        [sys.executable, "-c", WAITER], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert waiter.stdout is not None and waiter.stdout.readline().strip() == "waiting", waiter.stderr
        waiter.send_signal(signal.SIGINT)
        out, err = waiter.communicate(timeout=60)  # a loaded machine exits slowly; the old wait never did
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.wait()
    assert waiter.returncode == 0 and out.strip() == "stopped", err
