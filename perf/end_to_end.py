"""End to end: `make bench MODEL=moex TASK=chess` from the committed checkpoint, wall time and peak
memory, as a user runs it. Results and derived-data caches go to a scratch folder, so the committed
results are never touched; the first run starts from an empty cache (positions parsed, the random-init
floor computed), the second reuses it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from perf.peak_memory import measure_module


def other_runnable(samples: int = 5) -> int | None:
    """Threads other than this one's that want a CPU now (Linux's /proc/loadavg), the most of a few
    samples over a second: a busy machine slows the runs, so it is kept beside their times. The load
    average would lag a minute behind jobs that just stopped."""
    import time

    try:
        counts = []
        for _ in range(samples):
            counts.append(int(Path("/proc/loadavg").read_text().split()[3].split("/")[0]) - 1)
            time.sleep(0.2)
        return max(counts)
    except (OSError, ValueError, IndexError):  # not Linux
        return None


def bench_seconds(model: str = "moex", task: str = "chess", preset: str = "cpu", threads: int = 2) -> dict:
    with tempfile.TemporaryDirectory(prefix="moexbench-e2e-") as tmp:
        env = {**os.environ, "MOEXBENCH_RESULTS": str(Path(tmp) / "results"),
               "MOEXBENCH_CACHE": str(Path(tmp) / "cache"),
               "MOEXBENCH_NO_TRAIN": "1"}  # from the committed checkpoint, never a training run
        cmd = ["bench", "bench", "--model", model, "--task", task, "--preset", preset, "--seed", "0",
               "--threads", str(threads)]
        return {"command": f"make bench MODEL={model} TASK={task} PRESET={preset} THREADS={threads}",
                "other_runnable_before": other_runnable(),
                "cold_cache": measure_module(cmd, env), "warm_cache": measure_module(cmd, env)}
