"""Peak resident memory of one process alone.

`ru_maxrss` is not that on Linux: exec records the old address space's high-water mark, so a child
forked from a process that once held 13 GB reports 13 GB whatever it does. VmHWM in
/proc/self/status belongs to the current address space only, which exec replaces.

`python -m perf.peak_memory OUT.json MODULE ARGS...` runs MODULE as `python -m MODULE ARGS...`
would and writes its own peak to OUT.json, whether it succeeds or fails, with the largest peak of the
processes it forked and the CPU seconds of all of them."""

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
    """Wall seconds and peak RSS of `python -m MODULE ARGS...` in a child process, its own (run through
    this module's `__main__`), from the repository root. A failure is one error line."""
    with tempfile.TemporaryDirectory(prefix="moexbench-peak-") as tmp:
        peak_file = Path(tmp) / "peak.json"
        cmd = [sys.executable, "-m", "perf.peak_memory", str(peak_file), *module_args]
        start = time.perf_counter()
        out = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        seconds = time.perf_counter() - start
        if out.returncode != 0:
            last = (out.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise SystemExit(f"error: python -m {' '.join(module_args)} failed: {last}")
        return {"wall_seconds": seconds, **json.loads(peak_file.read_text())}


if __name__ == "__main__":
    out, module, *args = sys.argv[1:]
    sys.argv = [module, *args]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    finally:
        own, helpers = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        # helpers: the processes it forked and waited for (position workers, the chess floor's process);
        # a forked one's peak counts the pages it shares with this process, so the two peaks overlap.
        Path(out).write_text(json.dumps({
            "peak_rss_mib": own_peak_rss_mib(), "largest_helper_peak_rss_mib": helpers.ru_maxrss / 1024,
            "cpu_seconds": own.ru_utime + own.ru_stime + helpers.ru_utime + helpers.ru_stime}))
