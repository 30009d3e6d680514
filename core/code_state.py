"""The Python source this process runs, fingerprinted file by file when its first `core` module is
imported (core/__init__.py imports this module; every entry point reaches `core` through its top-level
imports).

Our modules load lazily (a task imports its scorer when it gets there), so a file edited while a long
run is under way can be half in that run: the old version of what it had imported, the new version of
the rest. `changed_since_start()` says whether that can have happened to what this process has run so
far: a module it has loaded whose file differs now from when the process began (edited before it was
loaded, or after). An edit to a module it never loaded changes nothing it computed, so it does not count.
`core.results.git_sha` marks what such a run writes, so a result never claims code it was not computed by.

What this process computed includes what its forked side processes computed (core/side_process.py):
each sends back the modules it loaded, kept in `LOADED_ELSEWHERE`. Pool workers spawned for position
labels import the modules their parent has already imported to hand them the work.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("adapters", "analysis", "bench", "core", "experiments", "models", "perf", "tasks")
UNREADABLE = "unreadable"  # differs from every sha256, so a file that cannot be read reads as changed


def fingerprints(root: Path = ROOT) -> dict[str, str] | None:
    """sha256 of each .py file of our packages under `root`, by path relative to it (about 10 ms).
    Never raises: an editor's hidden lock file (Emacs' `.#name.py`, a dangling link) is not a module,
    a file that vanishes or cannot be read between listing and reading gets UNREADABLE, and a folder
    that vanishes while it is listed makes the whole reading None (a change, never a crash at the end
    of a run)."""
    found = {}
    try:
        for package in PACKAGES:
            for path in sorted((root / package).rglob("*.py")):
                if path.name.startswith(".") or not path.is_file():
                    continue
                try:
                    found[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
                except OSError:
                    found[path.relative_to(root).as_posix()] = UNREADABLE
    except OSError:
        return None
    return found


AT_START = fingerprints()
LOADED_ELSEWHERE: set[str] = set()  # what forked side processes of this one loaded (core/side_process.py)


def loaded_files(root: Path = ROOT) -> set[str]:
    """Our .py files behind the modules this process has imported, by path relative to `root`."""
    files = set()
    for module in list(sys.modules.values()):  # a copy: another thread may import meanwhile
        file = getattr(module, "__file__", None)
        if not file:
            continue
        path = Path(file).resolve()
        if path.suffix == ".py" and path.is_relative_to(root) and path.relative_to(root).parts[0] in PACKAGES:
            files.add(path.relative_to(root).as_posix())
    return files


def changed_since_start(at_start: dict[str, str] | None = None, root: Path = ROOT) -> bool:
    """Whether a module this process (or a side process of it) has loaded differs on disk from when
    the process began: added since (absent at start), edited, deleted or unreadable."""
    at_start = AT_START if at_start is None else at_start
    now = fingerprints(root)
    if at_start is None or now is None:
        return True
    return any(at_start.get(f, UNREADABLE) == UNREADABLE or now.get(f) != at_start[f]
               for f in loaded_files(root) | LOADED_ELSEWHERE)
