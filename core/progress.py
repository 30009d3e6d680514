"""One progress-bar style for every step that can take more than a few seconds (tqdm, to stderr).

Quiet under CI=true or MOEXBENCH_QUIET=1 (what `moexbench --quiet` sets, so that child processes
inherit it): CI logs keep the run's printed findings, not thousands of bar redraws.
"""

from __future__ import annotations

import os
import sys


def quiet() -> bool:
    return os.environ.get("MOEXBENCH_QUIET") == "1" or os.environ.get("CI", "").lower() == "true"


def progress(iterable=None, *, total: int | None = None, desc: str = "", unit: str = "it", initial: int = 0,
             enabled: bool = True):
    """A tqdm bar over `iterable` (or one updated by hand, given `total`); silent when quiet()."""
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, initial=initial, disable=quiet() or not enabled,
                dynamic_ncols=True, mininterval=2.0, leave=False, file=sys.stderr)
