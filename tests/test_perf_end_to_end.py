"""The end-to-end perf figure measures its child alone: wall time, that process's peak memory, and a
failing run is one error line, never a figure."""

import os
import sys

import pytest

from bench.perf_end_to_end import _timed_child


def test_peak_memory_is_the_childs_own():
    grab = "import numpy as np; a = np.ones(200 * 2**20 // 8); print(a.sum())"
    out = _timed_child([sys.executable, "-c", grab], dict(os.environ))
    assert out["peak_rss_mib"] > 200 and out["wall_seconds"] > 0


def test_a_failing_run_names_its_last_error_line():
    with pytest.raises(SystemExit, match="failed: ValueError: no checkpoint"):
        _timed_child([sys.executable, "-c", "raise ValueError('no checkpoint')"], dict(os.environ))
