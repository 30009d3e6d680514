"""A folder written whole or not at all, never over an existing one: what the commands that import
a user's own data write (tasks/chess/own_games.py, tasks/language/own_corpus.py).

The files go into a hidden temporary folder beside it (`.<name>.partial-*`, unique to the process),
renamed to the folder once they are all written. A failure, Ctrl-C included, removes it; a process
killed outright leaves it behind, hidden, for the user to delete. The parent must exist already, so
nothing is created above the folder.
"""

from __future__ import annotations

import ctypes
import errno
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
        try:
            rename_no_replace(partial, out)
        except FileExistsError:  # made by someone else while the files were written
            raise BenchError(f"{out} appeared while it was being written; nothing was written over it") from None
        except OSError as e:
            raise BenchError(f"could not move the finished files to {out} ({e.strerror}); "
                             f"nothing was written") from None
    finally:
        shutil.rmtree(partial, ignore_errors=True)


_RENAME_NOREPLACE = 1
_AT_FDCWD = -100


def rename_no_replace(src: Path, dst: Path) -> None:
    """Renames src to dst, raising FileExistsError if dst exists. A plain rename would silently
    replace an empty folder made at dst after the check; Linux's renameat2(RENAME_NOREPLACE) checks
    and renames in one step. Where it is missing (another OS, an old libc or a file system without
    it) the check is made just before the rename, which leaves that small window open."""
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is not None:
        if renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE) == 0:
            return
        err = ctypes.get_errno()
        if err == errno.EEXIST:
            raise FileExistsError(errno.EEXIST, os.strerror(err), str(dst))
        if err not in (errno.ENOSYS, errno.EINVAL):
            raise OSError(err, os.strerror(err), str(dst))
    if os.path.lexists(dst):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(dst))
    os.rename(src, dst)
