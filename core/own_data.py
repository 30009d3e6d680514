"""Runs on the user's own data (MOEXBENCH_CHESS_DATA, MOEXBENCH_LANGUAGE_DATA; a task's `own_data`)
never touch what the committed data produced:

- results (and a chess training curve) go to a folder of their own,
  `results/<task>/[<preset>/]data.<folder name>-<6 hex of its path>/` (`variant_part`), and each
  result records the data it read (`identity`);
- nothing is trained or fitted into the committed `checkpoints/`: a model or dictionary that must
  be trained on your data asks for MOEXBENCH_CHECKPOINTS=<folder of its own>; training state goes to
  a run folder of its own (`run_suffix`);
- a dictionary fitted on your data records the data it saw, and one kept in the cache sits in a
  folder of its own, so no fit is reused across data; the committed dictionaries are read as they
  are, as the committed models are;
- the commands that compare with or write the committed numbers (`make grid`, `make regress`, the
  recipe and analysis scripts) refuse your data (bench/own_data.py, which needs the registry).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from core.errors import BenchError
from core.paths import ROOT

COMMITTED_CHECKPOINTS = ROOT / "checkpoints"


def variant_for(folder: Path) -> str:
    """The results sub-folder of runs on the data in `folder`: its name and a digest of its path, so
    that two folders of one name never share a summary."""
    path = folder.resolve()
    name = "".join(c if (c.isascii() and c.isalnum()) or c in "-_." else "_" for c in path.name)
    return f"data.{name}-{hashlib.sha256(str(path).encode()).hexdigest()[:6]}"


def variant_part(task) -> str | None:
    folder = task.own_data()
    return None if folder is None else variant_for(folder)


def run_suffix(task) -> str:
    """Appended to a training run's folder under runs/ on own data: its state never meets the
    committed data's run of the same model."""
    part = variant_part(task)
    return "" if part is None else f"-{part}"


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
