"""Pool workers that end when the process that started them is killed.

A `multiprocessing` pool's worker whose parent is killed outright (SIGKILL, the end of a session, a
CI timeout) runs its task in hand to the end as an orphan and only then fails to hand the result
back: for the game generator that is a chunk of engine games, many seconds of a core and an engine.
`die_with_parent` asks Linux to send the worker SIGTERM when its parent dies (prctl
PR_SET_PDEATHSIG); the engine, whose input then closes, quits on its own. Pass it as the pool's
initializer with the parent's pid:

    Pool(n, initializer=die_with_parent, initargs=(os.getpid(),))

Elsewhere (macOS, Windows) it does nothing: the workers end as before, after their task.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent_pid: int) -> None:
    """Pool initializer: SIGTERM to this worker when `parent_pid` (the pool's owner) dies."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        refused = libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0
    except (OSError, AttributeError):
        return
    if refused:  # a kernel that says no: the worker behaves as without this, nothing worse
        return
    # The parent may have died before the request was made, which prctl never reports: then the
    # worker has been handed to another process already.
    if os.getppid() != parent_pid:
        os._exit(1)
