"""Runs on the user's own data (MOEXBENCH_CHESS_DATA, MOEXBENCH_LANGUAGE_DATA; a task's `own_data`)
never touch what the committed data produced:

- results go to a folder of their own, `results/<task>/[<preset>/]data.<folder name>/`;
- nothing is trained or fitted into the committed `checkpoints/`: a model or dictionary that must
  be trained on your data asks for MOEXBENCH_CHECKPOINTS=<folder of its own>;
- a dictionary fitted on your data records the data it saw (`identity`), so a fit kept in the
  cache is never reused for other data, in either direction.

Committed checkpoints and dictionaries are read as they are: scoring our models on your data is
what the folder is for.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from core.errors import BenchError
from core.paths import ROOT

COMMITTED_CHECKPOINTS = ROOT / "checkpoints"


def variant_part(task) -> str | None:
    folder = task.own_data()
    return None if folder is None else f"data.{folder.resolve().name}"


def identity(task) -> str | None:
    """The folder and a digest of every file in it (names and bytes), or None for the committed data."""
    folder = task.own_data()
    if folder is None:
        return None
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return f"{folder.resolve()} sha256 {digest.hexdigest()[:16]}"


def refuse_training_into_committed(task, target: Path, what: str) -> None:
    """One line instead of training `what` on the user's data into the committed checkpoints."""
    folder = task.own_data()
    if folder is None:
        return
    committed = COMMITTED_CHECKPOINTS.resolve()
    if target.resolve() == committed or committed in target.resolve().parents:
        raise BenchError(f"{what} would be trained on your data ({folder}) into {target}, beside the committed "
                         f"checkpoints; set MOEXBENCH_CHECKPOINTS=<a folder of its own> for what your data trains")
