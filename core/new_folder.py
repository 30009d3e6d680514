"""A folder written whole or not at all, never over an existing one: what the commands that import
a user's own data write (tasks/chess/own_games.py, tasks/language/own_corpus.py).

The files go into a hidden temporary folder beside it (`.<name>.partial-*`, unique to the process),
renamed to the folder once they are all written. A failure, Ctrl-C included, removes it; a process
killed outright leaves it behind, hidden, for the user to delete. The parent must exist already, so
nothing is created above the folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from core.errors import BenchError


def check_new(out: Path) -> None:
    """Refuses, before any work, a folder that exists or whose parent does not."""
    if out.exists():
        raise BenchError(f"{out} exists; give a new folder (nothing is written over)")
    if not out.parent.is_dir():
        raise BenchError(f"{out.parent} (where {out.name} would go) is not a folder; create it first")


def write_new_folder(out: Path, fill: Callable[[Path], None]) -> None:
    """fill(partial) writes the files into `partial`; then it becomes `out`."""
    check_new(out)
    partial = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.partial-"))
    os.chmod(partial, 0o755)  # mkdtemp's 0700 would follow the folder after the rename
    try:
        fill(partial)
        if out.exists():  # made by someone else while the files were written
            raise BenchError(f"{out} appeared while it was being written; nothing was written over it")
        try:
            os.rename(partial, out)
        except OSError as e:
            raise BenchError(f"could not move the finished files to {out} ({e.strerror}); "
                             f"nothing was written") from None
    finally:
        shutil.rmtree(partial, ignore_errors=True)
