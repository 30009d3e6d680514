"""Issue 8 item 5: `make bench MODEL=moex TASK=chess` from the committed checkpoint, wall time and peak
memory, as a user runs it. Results and derived-data caches go to a scratch folder, so the committed
results are never touched; the first run starts from an empty cache (positions parsed, the random-init
floor computed), the second reuses it."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _timed_child(cmd: list[str], env: dict) -> dict:
    """Wall seconds and the child's own peak RSS (os.wait4 reports it for that process alone)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        last = (stderr.strip().splitlines() or ["(no output)"])[-1]
        raise SystemExit(f"error: {' '.join(cmd[2:])} failed: {last}")
    return {"wall_seconds": seconds, "peak_rss_mib": usage.ru_maxrss / 1024}


def bench_seconds(model: str = "moex", task: str = "chess", preset: str = "cpu", threads: int = 2) -> dict:
    with tempfile.TemporaryDirectory(prefix="moexbench-e2e-") as tmp:
        env = {**os.environ, "MOEXBENCH_RESULTS": str(Path(tmp) / "results"),
               "MOEXBENCH_CACHE": str(Path(tmp) / "cache"),
               "MOEXBENCH_NO_TRAIN": "1"}  # from the committed checkpoint, never a training run
        cmd = [sys.executable, "-m", "bench", "bench", "--model", model, "--task", task, "--preset", preset,
               "--seed", "0", "--threads", str(threads)]
        return {"command": f"make bench MODEL={model} TASK={task} PRESET={preset} THREADS={threads}",
                "cold_cache": _timed_child(cmd, env), "warm_cache": _timed_child(cmd, env)}
