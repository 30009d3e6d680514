"""Peak memory figures in `make perf` are each child's own: wall time, that process's peak (not a
high-water mark inherited from a big parent), and a failing run is one error line, never a figure."""

import os

import numpy as np
import pytest

from perf.peak_memory import measure_module


@pytest.fixture
def module_dir(tmp_path):
    (tmp_path / "grab_memory.py").write_text(
        "import sys\nimport numpy as np\na = np.ones(int(sys.argv[1]) * 2**20 // 8)\nprint(a.sum())\n")
    (tmp_path / "fail_loudly.py").write_text("raise ValueError('no checkpoint')\n")
    (tmp_path / "fork_a_helper.py").write_text(  # a helper that holds 300 MiB, spins 1 s of CPU, holds on
        "import os, time\nimport numpy as np\npid = os.fork()\nif pid == 0:\n    a = np.ones(300 * 2**20 // 8)\n"
        "    end = time.process_time() + 1.0\n    while time.process_time() < end:\n        pass\n"
        "    time.sleep(4.5)  # past two of the sampler's 2 s rounds\n    os._exit(0)\n"
        "os.waitpid(pid, 0)\n")
    return {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def test_peak_memory_is_the_childs_own_not_its_parents(module_dir):
    held = np.ones(600 * 2**20 // 8)  # this process now peaks above 600 MiB; a child must not report that
    small = measure_module(["grab_memory", "50"], module_dir)
    big = measure_module(["grab_memory", "300"], module_dir)
    assert held.sum() > 0
    assert small["peak_rss_mib"] < 400, small
    assert big["peak_rss_mib"] > small["peak_rss_mib"] + 200 and big["wall_seconds"] > 0


def test_a_forked_helpers_memory_and_cpu_are_counted_beside_the_main_process(module_dir):
    out = measure_module(["fork_a_helper"], module_dir)
    assert out["tree_peak_pss_mib"] > 300 > out["peak_rss_mib"], out
    assert out["cpu_seconds"] >= 1.0, out


def test_a_failing_run_names_its_last_error_line(module_dir):
    with pytest.raises(SystemExit, match="python -m fail_loudly failed: ValueError: no checkpoint"):
        measure_module(["fail_loudly"], module_dir)
