"""A function run in a second process beside the caller's work: its value or its error comes back,
a death is one clear line, and the chess floor computed that way is the sequential one bit for bit."""

import os

import pytest
import torch

from core import side_process
from core.errors import BenchError
from core.side_process import beside


@pytest.fixture
def spare_core(monkeypatch):
    """Fork whatever this machine's core count (a one-core CI runner would otherwise never fork)."""
    monkeypatch.setattr(side_process, "second_core_for_one_thread", lambda: True)


def test_the_value_comes_back_from_the_child(spare_core):
    weights = torch.arange(6.0).view(2, 3)  # a closure over a tensor: nothing is pickled on the way in
    later = beside(lambda: {"sum": weights.sum().item(), "pid": os.getpid()}, name="test")
    assert later.forked
    value = later.result()
    assert value["sum"] == 15.0 and value["pid"] != os.getpid()


def test_a_large_value_comes_back_whole(spare_core):
    later = beside(lambda: torch.arange(1_000_000), name="test")  # megabytes: more than a pipe's buffer
    assert torch.equal(later.result(), torch.arange(1_000_000))


def test_an_error_in_the_child_is_raised_as_itself(spare_core):
    def refuses():
        raise BenchError("no such game file; give one")

    with pytest.raises(BenchError, match="^no such game file; give one$"):  # still one clear line, exit 2
        beside(refuses, name="test").result()


def test_an_error_that_does_not_pickle_comes_back_as_its_traceback(spare_core):
    class Local(Exception):  # a class pickle cannot find by name
        pass

    def fails():
        raise Local("no board here")

    with pytest.raises(RuntimeError, match="(?s)in the test process.*Local: no board here"):
        beside(fails, name="test").result()


def test_a_child_that_dies_is_one_line_naming_it_and_the_way_out(spare_core):
    with pytest.raises(BenchError, match="the test process ended without a result \\(exit code 3\\); run again "
                                         "with MOEXBENCH_SIDE_PROCESS=0"):
        beside(lambda: os._exit(3), name="test").result()


def test_leaving_the_block_before_the_result_stops_the_child(spare_core):
    import time

    with pytest.raises(ValueError):
        with beside(lambda: time.sleep(600), name="test") as later:
            raise ValueError("the parent's own work failed")
    assert not later._process.is_alive() and later._process.exitcode is not None


@pytest.mark.parametrize("setting", ["threads", "opt-out", "gpu"])
def test_nothing_forks_at_more_threads_when_told_not_to_or_off_the_cpu(monkeypatch, setting):
    if setting == "threads":
        monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    if setting == "opt-out":
        monkeypatch.setenv("MOEXBENCH_SIDE_PROCESS", "0")
    later = beside(lambda: os.getpid(), device="cuda:0" if setting == "gpu" else "cpu")
    assert not later.forked and later.result() == os.getpid()


def test_the_chess_floor_and_model_metrics_beside_the_features_equal_them_after_it(monkeypatch, tmp_path, capsys):
    from adapters.dense import DenseAdapter
    from bench.model_store import build_random
    from tasks.chess import floor_cache
    from tasks.chess.config import ChessConfig
    from tasks.chess.task import ChessTask

    config = ChessConfig(legal_move_games=2, workers=1)
    trained = DenseAdapter(build_random(DenseAdapter, ChessTask, "tiny", 0).eval())
    floors = []
    for spare in (False, True):
        monkeypatch.setattr(side_process, "second_core_for_one_thread", lambda: spare)
        monkeypatch.setattr(floor_cache, "CACHE", tmp_path / f"cache-{spare}")  # computed, not read back
        random = DenseAdapter(build_random(DenseAdapter, ChessTask, "tiny", 1_000).eval())
        out = ChessTask.evaluate(trained, random, config, "tiny", 0)
        assert out["details"]["random_init"]["from_cache"] is False
        assert ("in a second process" in capsys.readouterr().out) == spare
        floors.append((out["metrics"], out["details"]["random_init"], out["details"]["model"]))
    assert floors[0] == floors[1]  # every metric: the floor's and the model-level ones (val_loss, fidelity)
    assert list(floors[0][0]) == list(floors[1][0])  # in the same order, as the JSON writes them
    assert floors[0][0]["coverage_random_init"] > 0  # a floor was computed, not left empty
    assert floors[0][0]["val_loss"] > 0 and "loss_recovered" in floors[0][0] and "legal_move_rate" in floors[0][0]


def test_the_modules_the_child_loaded_count_as_this_process_s(spare_core, monkeypatch):
    import importlib
    import sys

    from core import code_state

    monkeypatch.setattr(code_state, "LOADED_ELSEWHERE", set())
    unloaded = sorted(set(code_state.fingerprints()) - code_state.loaded_files())
    module = next(f for f in unloaded if f.endswith(".py") and not f.endswith("__main__.py") and f.startswith("tasks/"))
    name = module.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
    later = beside(lambda: importlib.import_module(name) is not None, name="test")
    assert later.forked and later.result()
    assert name not in sys.modules  # the child imported it, not this process
    assert module in code_state.LOADED_ELSEWHERE
    # so an edit to it since this process began marks what this process writes
    assert code_state.changed_since_start({**code_state.fingerprints(), module: "an older version"})
