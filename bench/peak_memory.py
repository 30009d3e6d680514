"""Peak resident memory of one process alone.

`ru_maxrss` is not that on Linux: exec records the old address space's high-water mark, so a child
forked from a process that once held 13 GB reports 13 GB whatever it does. VmHWM in
/proc/self/status belongs to the current address space only, which exec replaces.

`python -m bench.peak_memory OUT.json MODULE ARGS...` runs MODULE as `python -m MODULE ARGS...`
would and writes its own peak to OUT.json, whether it succeeds or fails."""

from __future__ import annotations

import json
import resource
import runpy
import sys
from pathlib import Path


def own_peak_rss_mib() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux: the closest there is


if __name__ == "__main__":
    out, module, *args = sys.argv[1:]
    sys.argv = [module, *args]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    finally:
        Path(out).write_text(json.dumps({"peak_rss_mib": own_peak_rss_mib()}))
