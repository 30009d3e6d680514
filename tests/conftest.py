"""Tests never write into the repository: results, checkpoints, runs and caches go to a temp dir."""

import os
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
