"""Your own SAE or transcoder through a built-in model (bench/own_dictionary.py): its results get a
name of their own, never the committed dictionary's, and the commands that compare with the committed
numbers refuse it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import registry
from core.errors import BenchError
from tasks.chess.task import ChessTask

ROOT = Path(__file__).resolve().parents[1]


def _sae_folder(parent: Path, name: str = "my-sae") -> Path:
    """A SAELens TopK SAE for the tiny dense model's MLP (128 wide); untrained: only its name matters."""
    from sae_lens import TopKSAE, TopKSAEConfig
    from sae_lens.saes.sae import SAEMetadata

    folder = parent / name
    sae = TopKSAE(TopKSAEConfig(d_in=128, d_sae=256, k=8, metadata=SAEMetadata(hook_name="blocks.1.mlp.hook_post")))
    sae.save_model(str(folder))
    return folder


def test_the_built_in_names_stay_without_the_variables(monkeypatch):
    for variable in ("MOEXBENCH_SAE_PATH", "MOEXBENCH_SAE_RELEASE", "MOEXBENCH_TRANSCODER_PATH"):
        monkeypatch.delenv(variable, raising=False)
    assert [registry.model_adapter(m).name for m in ("dense+sae", "dense+transcoder", "dense")] == \
        ["dense+sae", "dense+transcoder", "dense"]


def test_your_dictionary_names_the_model_after_its_folder_and_path(monkeypatch, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = _sae_folder(tmp_path / "a"), _sae_folder(tmp_path / "b")
    monkeypatch.setenv("MOEXBENCH_SAE_PATH", str(first))
    one = registry.model_adapter("dense+sae")
    assert one.name.startswith("dense+sae-my-sae-") and len(one.name) == len("dense+sae-my-sae-") + 6
    assert one.own_dictionary == {"variable": "MOEXBENCH_SAE_PATH", "value": str(first)}
    assert one.requested_name == "dense+sae" and one.architecture == "topk"
    assert registry.model_adapter("dense+attn-sae").name.startswith("dense+attn-sae-my-sae-")
    assert registry.model_adapter("dense").name == "dense"          # no dictionary: unaffected
    monkeypatch.setenv("MOEXBENCH_SAE_PATH", str(second))           # same folder name, another path
    assert registry.model_adapter("dense+sae").name != one.name
    with pytest.raises(BenchError, match="asks for a gated SAE, but .* holds a topk one; use MODEL=dense\\+sae"):
        registry.model_adapter("dense+sae:gated")
    monkeypatch.delenv("MOEXBENCH_SAE_PATH")
    monkeypatch.setenv("MOEXBENCH_SAE_RELEASE", "gpt2-small-res-jb")
    assert registry.model_adapter("dense+sae").name == "dense+sae-gpt2-small-res-jb"
    monkeypatch.setenv("MOEXBENCH_TRANSCODER_PATH", str(tmp_path / "tc"))
    assert registry.model_adapter("dense+transcoder").name.startswith("dense+transcoder-tc-")


def test_the_export_asks_for_the_same_dictionary_again(monkeypatch):
    from bench.export_saebench import _load

    for variable in ("MOEXBENCH_SAE_PATH", "MOEXBENCH_SAE_RELEASE", "MOEXBENCH_TRANSCODER_PATH"):
        monkeypatch.delenv(variable, raising=False)
    record = {"_path": "results/chess/dense+sae-my-sae-abc123.json", "model": "dense+sae-my-sae-abc123", "config": {},
              "provenance": {"model_spec": "dense+sae",
                             "own_dictionary": {"variable": "MOEXBENCH_SAE_PATH", "value": "/data/my-sae"}}}
    with pytest.raises(BenchError, match="set MOEXBENCH_SAE_PATH=/data/my-sae again to export it"):
        _load(record, ChessTask, "tiny", "cpu")


def test_bench_writes_your_sae_under_its_own_name_and_grid_refuses_it(tmp_path):
    env = {**os.environ, "MOEXBENCH_RESULTS": str(tmp_path / "results"), "MOEXBENCH_CHECKPOINTS": str(tmp_path / "ckpt"),
           "MOEXBENCH_RUNS": str(tmp_path / "runs"), "MOEXBENCH_CACHE": str(tmp_path / "cache"), "CI": "true",
           "MOEXBENCH_THREADS": "1"}

    def bench(*args, extra=None):
        return subprocess.run([sys.executable, "-m", "bench", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=600, env={**env, **(extra or {})})

    out = bench("train", "--model", "dense", "--task", "chess", "--preset", "tiny")
    assert out.returncode == 0, out.stderr[-2000:]
    folder = _sae_folder(tmp_path)
    out = bench("bench", "--model", "dense+sae", "--task", "chess", "--preset", "tiny", "random_floor=false",
                "legal_move_games=0", "probe_games=20", extra={"MOEXBENCH_SAE_PATH": str(folder)})
    assert out.returncode == 0, out.stderr[-2000:]
    written = sorted((tmp_path / "results" / "chess" / "tiny").rglob("dense+sae*.json"))  # in the no-floor folder
    assert len(written) == 1 and written[0].name.startswith("dense+sae-my-sae-"), written
    record = json.loads(written[0].read_text())
    assert record["model"] == written[0].stem and record["provenance"]["model_spec"] == "dense+sae"
    assert record["provenance"]["own_dictionary"] == {"variable": "MOEXBENCH_SAE_PATH", "value": str(folder)}
    assert str(folder) in record["provenance"]["features_from"]["source"]
    out = subprocess.run([sys.executable, "-m", "bench.grid", "--task", "chess", "--preset", "tiny", "--dry-run"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={**env, "MOEXBENCH_SAE_PATH": str(folder)})
    assert out.returncode == 2 and "MOEXBENCH_SAE_PATH is set here; unset it" in out.stderr, out.stderr[-2000:]
