"""Peak resident memory of one process alone.

`ru_maxrss` is not that on Linux: exec records the old address space's high-water mark, so a child
forked from a process that once held 13 GB reports 13 GB whatever it does. VmHWM in
/proc/self/status belongs to the current address space only, which exec replaces.

`python -m perf.peak_memory OUT.json MODULE ARGS...` runs MODULE as `python -m MODULE ARGS...`
would and writes its own peak to OUT.json, whether it succeeds or fails, with the CPU seconds of it and
the processes it started. `measure_module` adds the peak of the whole process tree, sampled."""

from __future__ import annotations

import json
import resource
import runpy
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from core.paths import ROOT


def own_peak_rss_mib() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux: the closest there is


def measure_module(module_args: list[str], env: dict) -> dict:
    """Wall seconds, peak RSS (its own, run through this module's `__main__`), CPU seconds (its own and
    its children's) and the sampled peak memory of its whole process tree (`tree_peak_pss_mib`) of
    `python -m MODULE ARGS...` in a child process, from the repository root. A failure is one error line."""
    with tempfile.TemporaryDirectory(prefix="moexbench-peak-") as tmp:
        peak_file = Path(tmp) / "peak.json"
        cmd = [sys.executable, "-m", "perf.peak_memory", str(peak_file), *module_args]
        start = time.perf_counter()
        with tempfile.TemporaryFile("w+") as err:
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err, text=True)
            tree_peak = _tree_peak_mib(proc)
            seconds = time.perf_counter() - start
            if proc.returncode != 0:
                err.seek(0)
                last = (err.read().strip().splitlines() or ["(no output)"])[-1]
                raise SystemExit(f"error: python -m {' '.join(module_args)} failed: {last}")
        return {"wall_seconds": seconds, **json.loads(peak_file.read_text()), "tree_peak_pss_mib": tree_peak}


def _proportional_bytes(process) -> int:
    """The process's proportional set size (PSS: each page shared by n processes counts 1/n), from
    Linux's smaps_rollup; its RSS where that is not readable."""
    try:
        for line in Path(f"/proc/{process.pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return process.memory_info().rss


def _tree_peak_mib(proc: subprocess.Popen, every_s: float = 2.0) -> float:
    """Until `proc` ends: the largest memory of it and every process it started (a forked helper, pool
    workers), summed as PSS so that a page a forked helper shares with its parent counts once, sampled
    every `every_s` (a shorter peak can be missed). Reading a process's PSS walks its page tables (about
    30 ms for a 1 GB process): sampled more often, the sampler would take CPU from what it measures."""
    import psutil

    peak = 0
    root = psutil.Process(proc.pid)
    while proc.poll() is None:
        total = 0
        try:
            for p in [root, *root.children(recursive=True)]:
                try:
                    total += _proportional_bytes(p)
                except psutil.Error:  # ended between the listing and the reading
                    pass
        except psutil.Error:
            pass
        peak = max(peak, total)
        try:
            proc.wait(timeout=every_s)
        except subprocess.TimeoutExpired:
            pass
    return peak / 2**20


if __name__ == "__main__":
    out, module, *args = sys.argv[1:]
    sys.argv = [module, *args]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    finally:
        own, helpers = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        Path(out).write_text(json.dumps({"peak_rss_mib": own_peak_rss_mib(),  # its helpers' CPU too
                                         "cpu_seconds": own.ru_utime + own.ru_stime + helpers.ru_utime + helpers.ru_stime}))
