"""Where things live: the repository root, and `.cache/` (or `MOEXBENCH_CACHE`) for derived data that
can always be rebuilt (encoded text, parsed positions, SAEs for floors and sweeps, activation
caches; never committed); `runs/` (or `MOEXBENCH_RUNS`) for the resume state of long runs and their
logs; `checkpoints/` (or `MOEXBENCH_CHECKPOINTS`) for trained models and the dictionaries fitted on them
(bench/model_store.py). Results have their own variable, read where they are written (core/results.py)."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("MOEXBENCH_CACHE", ROOT / ".cache"))
RUNS = Path(os.environ.get("MOEXBENCH_RUNS", ROOT / "runs"))
CHECKPOINTS = Path(os.environ.get("MOEXBENCH_CHECKPOINTS", ROOT / "checkpoints"))


def checkpoint_stem(task: str, model: str, preset: str, seed: int) -> Path:
    """A checkpoint's path without its suffix: seed 0 is the committed one, other seeds say theirs.
    CHECKPOINTS is read at each call, so a test that points it elsewhere moves every reader at once."""
    suffix = "" if seed == 0 else f"-seed{seed}"
    return CHECKPOINTS / task / f"{model.replace('+', '_')}-{preset}{suffix}"
