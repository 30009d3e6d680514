"""One function run in a second process while this one goes on with other work: a second core used
without a second torch thread, so every number stays what one thread computes.

    later = beside(compute)      # forks now when a core is spare, else runs compute() at .result()
    ...                          # this process's own work
    value = later.result()       # compute()'s return value, or its error raised here

The child is forked, so `compute` may be a closure over tensors and models: nothing is pickled on the
way in; its return value comes back pickled through a pipe. It runs quietly (no progress bars drawn
over the parent's), on one torch thread as the parent does, and dies with the parent (Ctrl-C, a kill). A CUDA
process never forks (CUDA does not survive a fork): there it runs at `.result()`, as without a core.
"""

from __future__ import annotations

import multiprocessing
import os
import traceback
from typing import Callable

from core.errors import BenchError


def a_core_is_spare() -> bool:
    """True when torch runs on one thread and this process may use another core. At more threads the
    second process stays out: at one thread its numbers are the sequential run's, bit for bit."""
    import torch

    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return torch.get_num_threads() == 1 and cores >= 2


def _cuda_started() -> bool:
    import torch

    return torch.cuda.is_available() and torch.cuda.is_initialized()


class deferred:
    """Runs `compute` when its result is asked for: the sequential path, and what `beside` gives
    where it does not fork."""

    def __init__(self, compute: Callable):
        self.compute, self.forked = compute, False

    def result(self):
        return self.compute()


class _Forked:
    def __init__(self, compute: Callable, name: str):
        ctx = multiprocessing.get_context("fork")
        self.name, self.forked = name, True
        self._receive, send = ctx.Pipe(duplex=False)
        self._process = ctx.Process(target=_child, args=(compute, send, os.getpid()), daemon=True, name=name)
        self._process.start()
        send.close()  # the child holds the only writing end: its death ends our read with EOFError

    def result(self):
        try:
            status, value = self._receive.recv()
        except EOFError:
            self._process.join()
            raise BenchError(f"the {self.name} process ended without a result (exit code {self._process.exitcode}; "
                             f"killed for memory?); run again with THREADS=1 on a machine with one core free, "
                             f"or with more memory") from None
        finally:
            self._receive.close()
        self._process.join()
        if status == "error":
            raise RuntimeError(f"in the {self.name} process:\n{value}")
        return value


def _child(compute: Callable, send, parent_pid: int) -> None:
    import torch

    from core.worker_processes import die_with_parent

    die_with_parent(parent_pid)
    os.environ["MOEXBENCH_QUIET"] = "1"  # core.progress reads it at each bar: the parent's bars stay readable
    torch.set_num_threads(1)  # as the parent (a_core_is_spare); set again, as a fork's thread pool is new
    try:
        outcome = ("ok", compute())
    except BaseException:  # noqa: BLE001 - everything goes back to the parent, which raises it
        outcome = ("error", traceback.format_exc())
    send.send(outcome)
    send.close()


def beside(compute: Callable, name: str = "second"):
    """`compute` started in a forked process when a core is spare (a_core_is_spare) and CUDA is not in
    use; otherwise
    run when `.result()` is called. Either way `.result()` gives its return value."""
    if not a_core_is_spare() or _cuda_started() or not hasattr(os, "fork"):
        return deferred(compute)
    return _Forked(compute, name)
