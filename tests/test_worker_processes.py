"""A busy pool worker started with `die_with_parent` ends when its parent is killed outright; one
started without it (the control, which shows the check can fail) runs its task on as an orphan."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PARENT = """
import multiprocessing as mp, os, sys, time
from core.worker_processes import die_with_parent

if __name__ == "__main__":
    guarded = sys.argv[1] == "guarded"
    options = dict(initializer=die_with_parent, initargs=(os.getpid(),)) if guarded else {}
    pool = mp.get_context("spawn").Pool(1, **options)
    worker = pool.apply(os.getpid)
    busy = pool.apply_async(time.sleep, (60,))   # a long task, as a chunk of engine games is
    time.sleep(0.5)
    print(worker, flush=True)
    time.sleep(120)
"""


def _alive(pid: int) -> bool:
    """Running, not a zombie (an orphan may wait for a reaper that a container never runs)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def _worker_after_parent_killed(mode: str, wait: float) -> tuple[int, bool]:
    """Starts a parent with a one-worker pool busy on a task, kills the parent with SIGKILL, and says
    whether the worker is still alive after up to `wait` seconds (polled)."""
    parent = subprocess.Popen([sys.executable, "-c", PARENT, mode], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                              # its resource tracker warns of the semaphores a killed parent leaves
                              stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT)})
    worker = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + wait
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    return worker, _alive(worker)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux only")
def test_worker_ends_with_its_killed_parent_and_an_unguarded_one_does_not():
    _, alive = _worker_after_parent_killed("guarded", wait=10)
    assert not alive
    worker, alive = _worker_after_parent_killed("unguarded", wait=3)
    try:
        assert alive, "the control's orphaned worker ended within 3 s: this test could not tell the fix apart"
    finally:
        if alive:
            os.kill(worker, signal.SIGKILL)
