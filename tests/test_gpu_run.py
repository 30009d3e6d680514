"""The GPU lease's whole-run script, at smoke size on the CPU: checkpoint, curve and scores come out,
and a run projected past its budget is refused before any training."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(tmp_path, *args):
    env = {**os.environ, "MOEXBENCH_RESULTS": str(tmp_path / "results"), "MOEXBENCH_CHECKPOINTS": str(tmp_path / "ckpt"),
           "MOEXBENCH_RUNS": str(tmp_path / "runs"), "CI": "true"}
    return subprocess.run([sys.executable, "-m", "experiments.chess_gpu_run", "--preset", "gpu-smoke", "--device", "cpu",
                           *args], cwd=ROOT, capture_output=True, text=True, timeout=900, env=env)


def test_the_whole_run_writes_checkpoint_curve_and_scores(tmp_path):
    # A budget no machine misses: the projection is measured, and on a CPU shared with other jobs the
    # smoke run's ran past the default 10 minutes (the refusal has its own test below).
    out = _run(tmp_path, "--budget-min", "600")
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / "ckpt" / "chess" / "dense-gpu-smoke.safetensors").exists()
    curve = json.loads((tmp_path / "results" / "chess" / "gpu-smoke" / "training_curve_dense.json").read_text())
    assert curve["format"] == "moves" and [p["step"] for p in curve["points"]] == [20, 40]
    assert set(curve["points"][-1]["probe_f1_by_layer"]) == {"0", "1", "2", "3"}
    result = json.loads((tmp_path / "results" / "chess" / "gpu-smoke" / "dense.json").read_text())
    assert "probe_f1_random_init" in result["metrics"] and "legal_move_rate" in result["metrics"]
    assert f"probe F1 {result['metrics']['probe_f1']:.3f}" in out.stdout


def test_a_run_past_its_budget_is_refused_before_training(tmp_path):
    out = _run(tmp_path, "--budget-min", "0.00001")
    assert out.returncode == 2
    assert out.stderr.strip().startswith("error: projected") and "exceeds the budget" in out.stderr
    assert not (tmp_path / "ckpt").exists() and not (tmp_path / "runs").exists()
