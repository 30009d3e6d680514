"""One function run in a second process while this one goes on with other work: a second core used
without a second torch thread, so every number stays what one thread computes.

    with beside(compute, name="floor", device="cpu") as later:  # forks now, or runs compute() at .result()
        ...                                                    # this process's own work
        value = later.result()                                 # compute()'s value, or its error raised here

The child is forked, so `compute` may be a closure over tensors and models: nothing is pickled on the
way in; its return value comes back pickled through a pipe (read before the child is joined, so a
large value cannot block it). It runs quietly (no progress bars drawn over the parent's), on one torch
thread as the parent does, and dies with the parent (Ctrl-C; a kill, through Linux's parent-death
signal). Leaving the `with` block before `.result()` (an error in the parent's own work) stops it.
An exception in the child is raised again in the parent as itself when it pickles (a BenchError stays
one clear line), else as a RuntimeError with the child's traceback. The child is a daemon process, so
`compute` cannot start a multiprocessing pool of its own.

It forks only on Linux, on the CPU, at one torch thread, with a second core in this process's
affinity, and unless MOEXBENCH_SIDE_PROCESS=0; otherwise `compute` runs at `.result()`, in this process.
Set the variable where the other cores are already busy (the grid's parallel runs set it for each
run) or where memory is short: the child holds its own copy of what it touches.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import sys
import traceback
from typing import Callable

from core import code_state
from core.errors import BenchError

OPT_OUT = "MOEXBENCH_SIDE_PROCESS"


def second_core_for_one_thread() -> bool:
    """True when torch runs on one thread, this process may use two or more cores, and the user has
    not set MOEXBENCH_SIDE_PROCESS=0. Whether the other core is idle is not known here: at more
    threads the second process stays out, and at one its numbers are the sequential run's, bit for bit."""
    import torch

    if os.environ.get(OPT_OUT, "1") == "0" or not sys.platform.startswith("linux"):
        return False  # fork is unsafe where system frameworks start threads (macOS), absent on Windows
    return torch.get_num_threads() == 1 and len(os.sched_getaffinity(0)) >= 2


class _Later:
    """A result to come: `.result()` gives it, `.cancel()` (or leaving a `with` block) drops it."""

    forked = False

    def cancel(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.cancel()


class deferred(_Later):
    """Runs `compute` when its result is asked for: the sequential path, and what `beside` gives
    where it does not fork."""

    def __init__(self, compute: Callable):
        self.compute = compute

    def result(self):
        return self.compute()


class _Forked(_Later):
    forked = True

    def __init__(self, compute: Callable, name: str):
        ctx = multiprocessing.get_context("fork")
        self.name, self._done = name, False
        self._receive, send = ctx.Pipe(duplex=False)
        self._process = ctx.Process(target=_child, args=(compute, send, os.getpid()), daemon=True, name=name)
        self._process.start()
        send.close()  # the child holds the only writing end: its death ends our read with EOFError

    def result(self):
        try:
            status, value, loaded = pickle.loads(self._receive.recv_bytes())
        except EOFError:
            self._process.join()
            code = self._process.exitcode
            how = (f"killed by signal {-code} ({signal.Signals(-code).name}; for memory?)" if code and code < 0
                   else f"exit code {code}")
            raise BenchError(f"the {self.name} process ended without a result ({how}); run again with "
                             f"{OPT_OUT}=0 to compute it in the main process") from None
        finally:
            self._receive.close()
            self._done = True
        self._process.join()
        code_state.LOADED_ELSEWHERE.update(loaded)  # what it computed came from those modules too
        if status == "raise":
            raise value
        if status == "error":
            raise RuntimeError(f"in the {self.name} process:\n{value}")
        return value

    def cancel(self) -> None:
        """Stops the child if its result was never read (the parent's own work failed)."""
        if not self._done:
            self._done = True
            self._process.terminate()
            self._process.join()
            self._receive.close()


def _child(compute: Callable, send, parent_pid: int) -> None:
    import torch

    from core.worker_processes import die_with_parent

    die_with_parent(parent_pid)
    os.environ["MOEXBENCH_QUIET"] = "1"  # core.progress reads it at each bar: the parent's bars stay readable
    torch.set_num_threads(1)  # as the parent; set again, as a fork's thread pool is new
    # Each answer carries the modules this process loaded: the parent's result rests on them too.
    try:
        payload = pickle.dumps(("ok", compute(), code_state.loaded_files()))  # a value that does not pickle
    except Exception as e:  # noqa: BLE001 - everything goes back to the parent, which raises it (so does that)
        trace = traceback.format_exc()
        try:
            payload = pickle.dumps(("raise", e, code_state.loaded_files()))
            pickle.loads(payload)  # some exceptions pickle but cannot be rebuilt (required arguments)
        except Exception:  # noqa: BLE001 - an exception that does not pickle goes back as its traceback
            payload = pickle.dumps(("error", trace, code_state.loaded_files()))
    except KeyboardInterrupt:  # Ctrl-C reaches both processes: the parent reports it
        os._exit(1)
    # Plain pickle, by value: Connection.send would use torch's reductions, which hand tensors over
    # through shared memory and a helper thread that does not outlive this process.
    send.send_bytes(payload)
    send.close()


def beside(compute: Callable, name: str = "second", device: str = "cpu"):
    """`compute` started in a forked process when `second_core_for_one_thread()` and `device` is the
    CPU (CUDA does not survive a fork); otherwise run when `.result()` is called. Either way
    `.result()` gives its return value; use it as a context manager so that an error stops the child."""
    import torch

    if str(device).split(":")[0] != "cpu" or torch.cuda.is_initialized() or not second_core_for_one_thread():
        return deferred(compute)
    return _Forked(compute, name)
