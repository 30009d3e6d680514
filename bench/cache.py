"""Where derived data that can always be rebuilt lives (encoded text, parsed positions, SAEs for
floors and sweeps, activation caches): `.cache/`, or `MOEXBENCH_CACHE`. Never committed."""

from __future__ import annotations

import os
from pathlib import Path

CACHE = Path(os.environ.get("MOEXBENCH_CACHE", Path(__file__).resolve().parents[1] / ".cache"))
