"""End to end: `make bench MODEL=moex TASK=chess` from the committed checkpoint, wall time and peak
memory, as a user runs it. Results and derived-data caches go to a scratch folder, so the committed
results are never touched; the first run starts from an empty cache (positions parsed, the random-init
floor computed), the second reuses it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from perf.peak_memory import measure_module


def bench_seconds(model: str = "moex", task: str = "chess", preset: str = "cpu", threads: int = 2) -> dict:
    with tempfile.TemporaryDirectory(prefix="moexbench-e2e-") as tmp:
        env = {**os.environ, "MOEXBENCH_RESULTS": str(Path(tmp) / "results"),
               "MOEXBENCH_CACHE": str(Path(tmp) / "cache"),
               "MOEXBENCH_NO_TRAIN": "1"}  # from the committed checkpoint, never a training run
        cmd = ["bench", "bench", "--model", model, "--task", task, "--preset", preset, "--seed", "0",
               "--threads", str(threads)]
        # a busy machine slows both runs: the load beside them is kept with the times
        return {"command": f"make bench MODEL={model} TASK={task} PRESET={preset} THREADS={threads}",
                "load_average_before": round(os.getloadavg()[0], 2),
                "cold_cache": measure_module(cmd, env), "warm_cache": measure_module(cmd, env)}
