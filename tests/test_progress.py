"""Progress bars: one helper, silent under CI=true, MOEXBENCH_QUIET=1 and `--quiet`."""

import io

import pytest

from core.progress import progress


@pytest.mark.parametrize("env, shown", [({}, True), ({"CI": "true"}, False), ({"MOEXBENCH_QUIET": "1"}, False)])
def test_bars_are_silent_when_asked(monkeypatch, env, shown):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("MOEXBENCH_QUIET", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    assert list(progress(range(3), desc="counting")) == [0, 1, 2]
    assert ("counting" in stream.getvalue()) is shown


def test_the_quiet_flag_reaches_child_processes(monkeypatch):
    import os
    from types import SimpleNamespace

    from bench.cli import _setup

    monkeypatch.delenv("MOEXBENCH_QUIET", raising=False)
    _setup(SimpleNamespace(quiet=True, threads=1, device="cpu"))
    assert os.environ.pop("MOEXBENCH_QUIET") == "1"
