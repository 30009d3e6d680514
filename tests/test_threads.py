"""The shared --threads option: the flag, else MOEXBENCH_THREADS, else 1; anything but a count >= 1 refused."""

import argparse

import pytest

from core.threads import add_threads_argument


def _parse(argv, monkeypatch, env=None):
    if env is None:
        monkeypatch.delenv("MOEXBENCH_THREADS", raising=False)
    else:
        monkeypatch.setenv("MOEXBENCH_THREADS", env)
    parser = argparse.ArgumentParser()
    add_threads_argument(parser)
    return parser.parse_args(argv).threads


def test_one_thread_unless_the_flag_or_the_variable_says_otherwise(monkeypatch):
    assert _parse([], monkeypatch) == 1
    assert _parse([], monkeypatch, env="3") == 3
    assert _parse(["--threads", "2"], monkeypatch, env="3") == 2
    assert _parse([], monkeypatch, env="") == 1  # empty: unset, as the Makefile reads it


@pytest.mark.parametrize("argv, env", [(["--threads", "0"], None), (["--threads", "two"], None), ([], "abc"),
                                       ([], "-1")])
def test_a_bad_count_from_the_flag_or_the_variable_is_refused(monkeypatch, capsys, argv, env):
    with pytest.raises(SystemExit) as stop:
        _parse(argv, monkeypatch, env=env)
    assert stop.value.code == 2
    assert "is not a thread count (from --threads, or MOEXBENCH_THREADS" in capsys.readouterr().err


def test_every_command_with_a_threads_flag_takes_it_from_the_shared_option():
    # The experiments once defaulted to two threads and ignored the variable; the option is now one.
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    own = [p for folder in ("bench", "experiments", "perf", "analysis", "tasks", "core")
           for p in (root / folder).rglob("*.py") if 'add_argument("--threads"' in p.read_text()]
    # core/threads.py is the option; perf/autointerp.py's flag is its worker's, set by the parent; the
    # local LLM server's is llama.cpp's.
    assert sorted(p.relative_to(root).as_posix() for p in own) == [
        "core/threads.py", "perf/autointerp.py", "tasks/language/autointerp/local_server.py"]
