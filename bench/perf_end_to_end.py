"""Issue 8 item 5: `make bench MODEL=moex TASK=chess` from the committed checkpoint, wall time and peak
memory, as a user runs it. Results and derived-data caches go to a scratch folder, so the committed
results are never touched; the first run starts from an empty cache (positions parsed, the random-init
floor computed), the second reuses it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _timed_child(module_args: list[str], env: dict) -> dict:
    """Wall seconds and peak RSS of `python -m MODULE ARGS...`, its own (bench/peak_memory.py says why
    not os.wait4's ru_maxrss)."""
    with tempfile.TemporaryDirectory(prefix="moexbench-peak-") as tmp:
        peak_file = Path(tmp) / "peak.json"
        cmd = [sys.executable, "-m", "bench.peak_memory", str(peak_file), *module_args]
        start = time.perf_counter()
        out = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        seconds = time.perf_counter() - start
        if out.returncode != 0:
            last = (out.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise SystemExit(f"error: python -m {' '.join(module_args)} failed: {last}")
        return {"wall_seconds": seconds, **json.loads(peak_file.read_text())}


def bench_seconds(model: str = "moex", task: str = "chess", preset: str = "cpu", threads: int = 2) -> dict:
    with tempfile.TemporaryDirectory(prefix="moexbench-e2e-") as tmp:
        env = {**os.environ, "MOEXBENCH_RESULTS": str(Path(tmp) / "results"),
               "MOEXBENCH_CACHE": str(Path(tmp) / "cache"),
               "MOEXBENCH_NO_TRAIN": "1"}  # from the committed checkpoint, never a training run
        cmd = ["bench", "bench", "--model", model, "--task", task, "--preset", preset, "--seed", "0",
               "--threads", str(threads)]
        return {"command": f"make bench MODEL={model} TASK={task} PRESET={preset} THREADS={threads}",
                "cold_cache": _timed_child(cmd, env), "warm_cache": _timed_child(cmd, env)}
