"""One process at a time on a piece of work that others may start too (training one checkpoint).

    with exclusive(run_dir / "train.lock", "dense cpu seed 1 is being trained by another process"):
        ...  # re-check whether the work is still needed: the other process may have done it

An advisory lock (`fcntl.flock`) on a file: the kernel drops it when its holder exits, killed or
not, so a crash never leaves a stale lock behind. A process that finds it taken says so once and
waits. Two `make bench` runs that need the same missing checkpoint then train it once: the second
loads what the first wrote. `lock_holder` asks without waiting (a scheduler that would rather
start other work meanwhile).
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def exclusive(path: Path, busy_message: str, say=print):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            say(f"{busy_message} (pid {holder}); waiting for it to finish")
            fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def lock_holder(path: Path) -> str | None:
    """The pid written in the lock at `path` while some process holds it (this one's children
    included); None while it is free or absent. Never waits, never creates the file. The probe takes
    a free lock for an instant, so a holder starting at that moment waits that instant (and says so,
    naming the last pid written there)."""
    try:
        handle = open(path)
    except FileNotFoundError:
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return handle.read().strip() or "unknown"
        fcntl.flock(handle, fcntl.LOCK_UN)
        return None
