"""Tests never write into the repository: results, checkpoints, runs and caches go to a temp dir."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_TMP = Path(tempfile.mkdtemp(prefix="moexbench-tests-"))
for _name in ("RESULTS", "CHECKPOINTS", "RUNS", "CACHE"):
    os.environ[f"MOEXBENCH_{_name}"] = str(_TMP / _name.lower())
os.environ.setdefault("MOEXBENCH_THREADS", "1")


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    import torch

    torch.set_num_threads(1)


@pytest.fixture
def tmp_env_dirs():
    return _TMP


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """Tiny dense chess and language checkpoints, trained through the real command line once for every
    bad-input test (tests/test_bad_input.py, tests/test_early_refusal.py)."""
    root = tmp_path_factory.mktemp("tiny-ckpt")
    env = {**os.environ, "MOEXBENCH_CHECKPOINTS": str(root / "checkpoints"), "MOEXBENCH_RUNS": str(root / "runs"),
           "MOEXBENCH_CACHE": str(root / "cache"), "CI": "true"}
    for task in ("chess", "language"):
        out = subprocess.run([sys.executable, "-m", "bench", "train", "--model", "dense", "--task", task,
                              "--preset", "tiny", "--threads", "1"], cwd=ROOT, capture_output=True, text=True,
                             timeout=300, env=env)
        assert out.returncode == 0, out.stderr[-2000:]
    return root / "checkpoints"
