"""The Python source this process runs, fingerprinted when its first `core` module is imported
(core/__init__.py imports this module, and every entry point imports `core` before anything else of ours).

Our modules load lazily (a task imports its scorer when it gets there), so a file edited while a long
run is under way can be half in that run: the old version of what it had imported, the new version of
the rest. `changed_since_start()` says whether that can have happened; `core.results.git_sha` marks
what such a run writes, so a result never claims code it was not computed by.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("adapters", "analysis", "bench", "core", "experiments", "models", "perf", "tasks")


def digest(root: Path = ROOT) -> str:
    """sha256 over every .py file of our packages under `root`, names and contents (about 10 ms)."""
    h = hashlib.sha256()
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


AT_START = digest()


def changed_since_start() -> bool:
    return digest() != AT_START
