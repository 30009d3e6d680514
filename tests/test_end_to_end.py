"""The whole vertical slice at the tiny preset on the committed corpus: train, evaluate, write the
result, the summary and the plot; and the same training under torchrun with two gloo processes."""

import json
import os
import subprocess
import sys
from pathlib import Path

from bench import registry
from bench.model_identity import parameters_sha256
from bench.model_store import load_or_train
from core.metrics import declared, lookup
from core.results import load_result, result_path

ROOT = Path(__file__).resolve().parents[1]
# Every declared chess metric but the MoE router's (router_*, expert_*), which a dense model has not.
REQUIRED = [m.name for m in declared("chess") if not m.name.startswith(("router_", "expert_"))]


def _bench(*args, env=None):
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=900, env={**os.environ, **(env or {})})


def test_make_bench_tiny_writes_the_results_contract(tmp_path):
    own_cache = {"MOEXBENCH_CACHE": str(tmp_path / "cache")}  # so the first run's floor is computed, not read
    out = _bench("bench", "--model", "dense", "--task", "chess", "--preset", "tiny", "--threads", "1",
                 "probe_games=40", env=own_cache)
    assert out.returncode == 0, out.stderr[-2000:]
    path = result_path("chess", "dense", "tiny", 0)
    record = load_result(path)
    assert record["task"] == "chess" and record["model"] == "dense" and record["preset"] == "tiny"
    for name in REQUIRED:  # load_result has checked each lies in its declared range
        assert name in record["metrics"], name
    assert [n for n in record["metrics"] if lookup("chess", n) is None] == []  # every metric is declared
    assert record["metrics"]["n_features"] == 128  # tiny: d_mlp = 4 x 32
    # the run prints what it found: the headline metrics beside their floors, then the file
    assert "| coverage | " in out.stdout and "| reconstruction | " in out.stdout and f"wrote {path}" in out.stdout
    assert record["details"]["positions"] == {"probe_train": 800, "probe_test": 800}
    assert record["provenance"]["deviations"] and record["provenance"]["seed"] == 0
    assert record["provenance"]["trained"]["device"].startswith("cpu (")  # where its weights were trained
    adapter, _, _ = load_or_train(registry.model_adapter("dense"), registry.task("chess"), "tiny", 0, "cpu")
    assert record["provenance"]["model_weights_sha256"] == parameters_sha256(adapter.model)  # the weights it scored
    assert record["details"]["feature_hook"] == "blocks.1.mlp.hook_post"
    rows = [json.loads(line) for line in path.with_suffix(".jsonl").read_text().splitlines()]
    assert len(rows) == 768 and {"bsp", "best_f1", "best_feature"} <= set(rows[0])
    for name in ("summary.md", "summary.csv", "scores.png"):
        assert (path.parent / name).stat().st_size > 0

    # A result over the same checkpoint scored on other weights (as if it had been trained again since)...
    planted = result_path("chess", "dense", "tiny", 0, "layer.-2")
    planted.parent.mkdir(parents=True, exist_ok=True)
    planted.write_text(json.dumps({**record, "provenance": {**record["provenance"], "model_weights_sha256": "0" * 64}}))

    # Same seed, same machine: same metrics (the checkpoint now exists, so this only evaluates).
    again = _bench("bench", "--model", "dense", "--preset", "tiny", "--threads", "1", "probe_games=40", env=own_cache)
    assert again.returncode == 0, again.stderr[-2000:]
    # ... is named by the run, which scored the checkpoint as it is now
    assert "scored on other weights than this run's" in again.stderr and "layer.-2/dense.json" in again.stderr
    planted.unlink()
    again_record = load_result(path)
    assert again_record["metrics"] == record["metrics"]
    # ... with the random-init floor read back from the cache the first run filled
    assert not record["details"]["random_init"]["from_cache"] and again_record["details"]["random_init"]["from_cache"]
    assert again_record["details"]["random_init"]["groups"] == record["details"]["random_init"]["groups"]


def test_the_move_format_runs_the_same_evaluation_end_to_end():
    out = _bench("bench", "--model", "dense", "--task", "chess", "--preset", "tiny-moves", "--threads", "1",
                 "probe_games=40")
    assert out.returncode == 0, out.stderr[-2000:]
    record = load_result(result_path("chess", "dense", "tiny-moves", 0))
    assert record["details"]["positions"] == {"probe_train": 800, "probe_test": 800}
    assert record["config"]["legal_move_games"] == 100
    for name in REQUIRED:
        assert name in record["metrics"], name
    meta = json.loads(Path(os.environ["MOEXBENCH_CHECKPOINTS"], "chess", "dense-tiny-moves.json").read_text())
    assert meta["fingerprint"]["format"] == "moves" and meta["model_config"]["vocab_size"] == 1970


def test_training_runs_unchanged_under_torchrun_with_two_cpu_processes(tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "MOEXBENCH_CHECKPOINTS": str(tmp_path / "ckpt"), "MOEXBENCH_RUNS": str(tmp_path / "runs"),
           "OMP_NUM_THREADS": "1"}
    out = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "bench", "train",
                          "--model", "dense", "--task", "chess", "--preset", "tiny", "--threads", "1"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    meta = json.loads((tmp_path / "ckpt" / "chess" / "dense-tiny.json").read_text())
    assert meta["history"][-1]["step"] == 40
    assert meta["history"][-1]["val_loss"] < meta["history"][0]["val_loss"]


def test_moex_tiny_reports_router_diagnostics_beside_the_chess_scores():
    out = _bench("bench", "--model", "moex", "--preset", "tiny", "--threads", "1", "probe_games=20",
                 "random_floor=false")
    assert out.returncode == 0, out.stderr[-2000:]
    record = load_result(result_path("chess", "moex", "tiny", 0, "random_floor.False"))  # lacks the floor
    metrics = record["metrics"]
    assert metrics["n_features"] == 8 * 64  # 8 experts x 2*d_model units: 4x the dense width
    # MoE-X's router scores an expert by the units it expects to fire, so the score and the units that
    # do fire fall together (about -0.86 here after 40 steps; -0.99 at cpu); 40 steps do not collapse it.
    assert metrics["router_sparsity_corr"] < -0.5
    assert metrics["router_collapsed"] == 0.0
    assert abs(sum(record["details"]["model"]["expert_load"]) - 1.0) < 1e-3
    assert "coverage_random_init" not in metrics


def test_upcycled_moex_trains_from_the_dense_checkpoint(tmp_path):
    env = {"MOEXBENCH_CHECKPOINTS": str(tmp_path / "ckpt"), "MOEXBENCH_RUNS": str(tmp_path / "runs")}
    out = _bench("train", "--model", "moex-upcycled", "--preset", "tiny", "--threads", "1", env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    meta = json.loads((tmp_path / "ckpt" / "chess" / "moex-upcycled-tiny.json").read_text())
    assert meta["initialised_from"].startswith("dense-tiny sha256 ")  # the dense model was trained first
    assert (tmp_path / "ckpt" / "chess" / "dense-tiny.safetensors").exists()
