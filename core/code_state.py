"""The Python source this process runs, fingerprinted when its first `core` module is imported
(core/__init__.py imports this module; every entry point reaches `core` through its top-level imports).

Our modules load lazily (a task imports its scorer when it gets there), so a file edited while a long
run is under way can be half in that run: the old version of what it had imported, the new version of
the rest. `changed_since_start()` says whether that can have happened, for an edit to any of our
modules, loaded or not (the cautious reading); `core.results.git_sha` marks what such a run writes, so
a result never claims code it was not computed by.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("adapters", "analysis", "bench", "core", "experiments", "models", "perf", "tasks")


def digest(root: Path = ROOT) -> str:
    """sha256 over the .py files of our packages under `root`, names and contents (about 10 ms). Never
    raises: an editor's hidden lock file (Emacs' `.#name.py`, a dangling link) is not a module, and a
    file that vanishes or cannot be read between listing and reading makes the digest "unreadable",
    which differs from every digest (so it reads as a change, never as a crash at the end of a run)."""
    h = hashlib.sha256()
    try:
        for package in PACKAGES:
            for path in sorted((root / package).rglob("*.py")):
                if path.name.startswith(".") or not path.is_file():
                    continue
                h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    except OSError:
        return "unreadable"
    return h.hexdigest()[:16]


AT_START = digest()


def changed_since_start() -> bool:
    return AT_START == "unreadable" or digest() != AT_START
