"""Where things live: the repository root, and `.cache/` (or `MOEXBENCH_CACHE`) for derived data that
can always be rebuilt (encoded text, parsed positions, SAEs for floors and sweeps, activation
caches; never committed); `runs/` (or `MOEXBENCH_RUNS`) for the resume state of long runs and their
logs. Results and checkpoints have their own variables, read where they are used (core/results.py,
bench/model_store.py)."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("MOEXBENCH_CACHE", ROOT / ".cache"))
RUNS = Path(os.environ.get("MOEXBENCH_RUNS", ROOT / "runs"))
