"""The grid command runs only what has no result yet, and names an unknown grid in one line."""

import pytest

from bench.grid import GRIDS, blocking_lock, depends_on, missing, next_runnable, retrained_dependencies
from core.errors import BenchError
from core.results import write_result


def test_existing_results_are_skipped(tmp_path, monkeypatch):
    monkeypatch.setenv("MOEXBENCH_RESULTS", str(tmp_path))
    assert missing("chess", "cpu") == GRIDS[("chess", "cpu")]
    write_result("chess", "switch", "cpu", 0, {"coverage": 0.1}, {}, {}, {})
    write_result("chess", "moex", "cpu", 2, {"coverage": 0.1}, {}, {}, {})
    assert ("switch", 0) not in missing("chess", "cpu") and ("dense", 0) in missing("chess", "cpu")
    assert ("moex", 2) not in missing("chess", "cpu") and ("moex", 1) in missing("chess", "cpu")
    assert missing("chess", "short") == [("dense", 0), ("moex", 0)]


def test_an_unknown_grid_is_one_clear_error():
    with pytest.raises(BenchError, match="no grid for task 'chess' at preset 'paper'; grids: chess/cpu"):
        missing("chess", "paper")


def test_a_run_over_another_models_checkpoint_waits_for_that_run():
    deps = {"dense+sae": "dense", "dense+snmf": "dense", "dense-continued": "dense"}.get
    todo = [("dense", 1), ("dense+sae", 1), ("switch", 1), ("dense+sae", 2)]
    assert next_runnable(todo, [], deps) == 0
    # dense seed 1 running: its SAE waits, switch takes the slot; seed 2's SAE has no dense run pending
    assert next_runnable(todo[1:], [("dense", 1)], deps) == 1
    assert next_runnable([("dense+sae", 1), ("dense+sae", 2)], [("dense", 1)], deps) == 1
    assert next_runnable([("dense+sae", 1), ("dense-continued", 1)], [("dense", 1)], deps) is None
    assert next_runnable([("dense+sae", 1)], [("switch", 1)], deps) == 0
    # dense seed 1's checkpoint not on disk and nobody to make it but its users: the first one trains
    # it, the others wait for that one
    assert next_runnable([("dense+snmf", 1), ("moex", 1)], [("dense+sae", 1)], deps) == 1
    # once the checkpoint is on disk (committed, or written before dense's run finished scoring), its
    # users start whatever else is pending or running
    on_disk = lambda model, seed: (model, seed) == ("dense", 1)  # noqa: E731
    assert next_runnable([("dense+sae", 1)], [("dense", 1)], deps, on_disk) == 0
    assert next_runnable([("dense+sae", 2), ("dense+sae", 1)], [("dense", 2)], deps, on_disk) == 1


def test_the_grid_knows_which_models_ride_on_dense():
    assert depends_on("dense+sae") == depends_on("dense+transcoder") == depends_on("dense-continued") == "dense"
    assert depends_on("moex") is None and depends_on("dense") is None


def test_a_needed_checkpoint_that_is_not_here_is_announced(tmp_path, monkeypatch):
    monkeypatch.setattr("core.paths.CHECKPOINTS", tmp_path)
    monkeypatch.setenv("MOEXBENCH_RESULTS", str(tmp_path / "results"))
    write_result("chess", "dense", "cpu", 1, {"coverage": 0.1}, {}, {}, {})  # scored on another machine
    todo = [("dense+sae", 1), ("dense+snmf", 1), ("dense", 2), ("dense+sae", 2), ("moex", 1)]
    lines = retrained_dependencies("chess", "cpu", todo)
    assert lines == ["note: dense+sae, dense+snmf seed 1 need dense-cpu-seed1.safetensors, which is not here: "
                     "the first of them trains it again (same recipe and seed). Trained on another machine, it "
                     "can differ from the model behind dense's seed-1 result and the other results over it; once "
                     "it is trained, each grid scores its own of those again: make grid TASK=chess PRESET=cpu and "
                     "make grid TASK=chess PRESET=cpu ARGS=\"layer=-1\""]


def test_the_grids_runs_are_quiet_single_threaded_and_keep_the_floor_in_their_own_process(tmp_path, monkeypatch):
    import subprocess

    from bench import grid

    monkeypatch.setenv("MOEXBENCH_RESULTS", str(tmp_path / "results"))
    monkeypatch.setattr(grid, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(grid, "missing", lambda task, preset, overrides: [("moex", 0)])
    monkeypatch.setattr(grid.time, "sleep", lambda s: None)
    started = []

    class Finished:
        returncode, pid = 0, 1

        def __init__(self, cmd, env, **kwargs):
            started.append((cmd, env))

        def poll(self):
            return 0
    monkeypatch.setattr(subprocess, "Popen", Finished)
    grid.run_grid("chess", "cpu", jobs=2, dry_run=False)
    (cmd, env), = started
    assert cmd[-2:] == ["--threads", "1"] and env["MOEXBENCH_QUIET"] == "1"
    assert env["MOEXBENCH_SIDE_PROCESS"] == "0"  # two runs already fill two cores: no third process each


def test_each_variant_grid_names_the_settings_that_send_results_to_its_folder():
    from bench.grid import VARIANT_SETTINGS, grid_variant

    variant_grids = [key for key in GRIDS if len(key) == 3]
    assert sorted(VARIANT_SETTINGS) == sorted(variant_grids)
    for task, preset, folder in variant_grids:
        assert grid_variant(task, list(VARIANT_SETTINGS[(task, preset, folder)])) == folder


def test_a_variants_grid_scores_into_its_own_folder_and_passes_its_settings(tmp_path, monkeypatch):
    import subprocess

    from bench import grid

    monkeypatch.setenv("MOEXBENCH_RESULTS", str(tmp_path / "results"))
    assert missing("chess", "cpu", ["layer=-1"]) == GRIDS[("chess", "cpu", "layer.-1")]
    write_result("chess", "moex", "cpu", 2, {"coverage": 0.1}, {}, {}, {})  # the main folder's: not this grid's
    write_result("chess", "moex", "cpu", 1, {"coverage": 0.1}, {}, {}, {}, variant="layer.-1")
    assert ("moex", 2) in missing("chess", "cpu", ["layer=-1"])
    assert ("moex", 1) not in missing("chess", "cpu", ["layer=-1"])
    with pytest.raises(BenchError, match="no grid for task 'chess' at preset 'cpu' with layer=-2; grids: .*"
                                         r"chess/cpu \(layer.-1\)"):
        missing("chess", "cpu", ["layer=-2"])

    monkeypatch.setattr(grid, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(grid.time, "sleep", lambda s: None)
    started = []

    class Finished:
        returncode, pid = 0, 1

        def __init__(self, cmd, env, **kwargs):
            started.append(cmd)

        def poll(self):
            return 0
    monkeypatch.setattr(subprocess, "Popen", Finished)
    monkeypatch.setattr(grid, "missing", lambda task, preset, overrides: [("switch", 2)])
    grid.run_grid("chess", "cpu", jobs=1, dry_run=False, overrides=["layer=-1"])
    assert started[0][-1] == "layer=-1" and started[0][started[0].index("--model") + 1] == "switch"
    assert (tmp_path / "runs" / "grid" / "chess-switch-cpu-layer.-1-seed2.log").exists()


def test_a_variants_grid_announces_a_models_own_checkpoint_that_is_not_here(tmp_path, monkeypatch):
    monkeypatch.setattr("core.paths.CHECKPOINTS", tmp_path)
    monkeypatch.setenv("MOEXBENCH_RESULTS", str(tmp_path / "results"))
    write_result("chess", "switch", "cpu", 2, {"coverage": 0.1}, {}, {}, {})  # scored on the lost checkpoint
    lines = retrained_dependencies("chess", "cpu", [("switch", 2), ("moex", 2)], variant="layer.-1")
    assert lines[0].startswith("note: switch seed 2 needs switch-cpu-seed2.safetensors, which is not here")
    assert lines[0].endswith("each grid scores its own of those again: make grid TASK=chess PRESET=cpu and "
                             "make grid TASK=chess PRESET=cpu ARGS=\"layer=-1\"")
    assert lines[1] == ("note: moex seed 2 needs moex-cpu-seed2.safetensors, which is not here: the first of "
                        "them trains it (same recipe and seed)")
    assert retrained_dependencies("chess", "cpu", [("switch", 2)]) == []  # the main grid trains it itself


def test_a_run_whose_checkpoint_another_process_trains_leaves_the_slot_to_the_next():
    deps = {"dense+sae": "dense"}.get
    locked = lambda model, seed: (model, seed) == ("switch", 2)  # noqa: E731  (a `make bench` outside the grid)
    todo = [("switch", 2), ("moex", 2)]
    assert blocking_lock("switch", 2, deps, locked=locked) == ("switch", 2)
    assert next_runnable(todo, [], deps, locked=locked) == 1
    assert next_runnable(todo[:1], [("moex", 2)], deps, locked=locked) is None
    # once that training wrote its checkpoint, the run only scores it (the lock is no longer in the way)
    on_disk = lambda model, seed: model == "switch"  # noqa: E731
    assert blocking_lock("switch", 2, deps, on_disk, locked) is None
    assert next_runnable(todo[:1], [], deps, on_disk, locked) == 0
    # the same for a checkpoint a run rides on
    dense_locked = lambda model, seed: (model, seed) == ("dense", 1)  # noqa: E731
    assert blocking_lock("dense+sae", 1, deps, locked=dense_locked) == ("dense", 1)
    assert next_runnable([("dense+sae", 1), ("moex", 1)], [], deps, locked=dense_locked) == 1


def test_a_held_training_lock_is_seen_without_waiting_or_creating_it(tmp_path, monkeypatch):
    import fcntl

    from bench import model_store

    monkeypatch.setattr(model_store, "RUNS", tmp_path)
    assert model_store.trainer_pid("chess", "switch", "cpu", 2) is None
    lock = model_store.run_dir("chess", "switch", "cpu", 2) / "train.lock"
    assert not lock.exists()
    lock.parent.mkdir(parents=True)
    with open(lock, "a+") as holder:  # another open handle: flock locks belong to the open file
        fcntl.flock(holder, fcntl.LOCK_EX)
        holder.write("4242")
        holder.flush()
        assert model_store.trainer_pid("chess", "switch", "cpu", 2) == "4242"
    assert model_store.trainer_pid("chess", "switch", "cpu", 2) is None


def test_a_run_held_back_by_an_outside_training_says_which_process_once(tmp_path, monkeypatch, capsys):
    import fcntl
    import subprocess

    from bench import grid, model_store

    monkeypatch.setattr(model_store, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(grid, "RUNS", tmp_path / "runs")
    lock = model_store.run_dir("chess", "switch", "cpu", 2) / "train.lock"
    lock.parent.mkdir(parents=True)
    holder = open(lock, "a+")
    fcntl.flock(holder, fcntl.LOCK_EX)
    holder.write("4242")
    holder.flush()
    started, sleeps = [], []

    class Finished:
        returncode, pid = 0, 1

        def __init__(self, cmd, **kwargs):
            started.append(cmd)

        def poll(self):
            return 0

    def sleep(seconds):  # the outside training ends after the grid's second wait
        sleeps.append(seconds)
        if len(sleeps) == 2:
            holder.close()
    monkeypatch.setattr(subprocess, "Popen", Finished)
    monkeypatch.setattr(grid.time, "sleep", sleep)
    monkeypatch.setattr(grid, "missing", lambda task, preset, overrides: [("switch", 2)])
    grid.run_grid("chess", "cpu", jobs=1, dry_run=False)
    out = capsys.readouterr()
    said = (out.out + out.err).count("waiting: switch seed 2 needs switch seed 2, which process 4242 is training")
    assert said == 1 and len(started) == 1 and len(sleeps) >= 2


def _checkpoint(folder, name, seconds, written=None):
    """A checkpoint's two files as the grid reads them: its last training record and when it was written."""
    import json
    import os

    (folder / "chess").mkdir(parents=True, exist_ok=True)
    (folder / "chess" / f"{name}.safetensors").write_bytes(b"")
    meta = folder / "chess" / f"{name}.json"
    meta.write_text(json.dumps({"model_config": {}, "fingerprint": {"format": "moves"},
                                "history": [{"seconds": seconds, "step": 10, "tokens": 20}]}))
    if written is not None:
        os.utime(meta, (written, written))


def _scored(model, seed, checkpoint, seconds, folder="ckpt"):
    trained = {} if seconds is None else {"trained": {"seconds": seconds, "steps": 10, "tokens": 20}}
    return write_result("chess", model, "cpu", seed, {"coverage": 0.1}, {}, {},
                        {"checkpoint": f"{folder}/chess/{checkpoint}", **trained})


def test_results_scored_on_an_earlier_training_of_their_checkpoint_are_scored_again(tmp_path, monkeypatch):
    import time

    from bench.grid import scored_on_earlier_weights

    monkeypatch.setattr("core.paths.CHECKPOINTS", tmp_path / "ckpt")
    monkeypatch.setenv("MOEXBENCH_RESULTS", str(tmp_path / "results"))
    later = time.time() + 60                                  # trained again after these were scored
    _scored("dense", 1, "dense-cpu-seed1", 100.0)            # scored on the checkpoint on disk
    _scored("dense+sae", 1, "dense-cpu-seed1", 99.0)         # on the one trained before it was lost
    _scored("dense+attn-sae", 1, "dense-cpu-seed1", 99.0).chmod(0o444)  # read-only: kept, as make bench keeps it
    _scored("dense+transcoder", 1, "dense-cpu-seed1", 99.0, folder="elsewhere")  # from another checkpoints folder
    _scored("dense+snmf", 1, "dense-cpu-seed1", None)        # no mark: cannot be placed
    _checkpoint(tmp_path / "ckpt", "dense-cpu-seed1", 100.0, written=later)
    _scored("moex", 1, "moex-cpu-seed1", 5.0)                # its checkpoint is not here: scoring would train it
    _scored("switch", 1, "switch-cpu-seed1", 5.0)
    (tmp_path / "ckpt" / "chess" / "switch-cpu-seed1.json").write_text("{}")  # half a checkpoint: a trainer saving
    _checkpoint(tmp_path / "ckpt", "moe-cpu-seed1", 7.0, written=time.time() - 3600)
    _scored("moe", 1, "moe-cpu-seed1", 8.0)                  # scored on a later training than the one here
    assert scored_on_earlier_weights("chess", "cpu") == [("dense+sae", 1)]


def test_the_grid_scores_again_what_a_retraining_in_it_left_behind(tmp_path, monkeypatch):
    import subprocess
    import time

    from bench import grid

    monkeypatch.setattr("core.paths.CHECKPOINTS", tmp_path / "ckpt")
    monkeypatch.setenv("MOEXBENCH_RESULTS", str(tmp_path / "results"))
    monkeypatch.setattr(grid, "RUNS", tmp_path / "runs")
    monkeypatch.setattr("bench.model_store.RUNS", tmp_path / "runs")  # no training lock of this machine's is seen
    monkeypatch.setattr(grid.time, "sleep", lambda s: None)
    monkeypatch.setattr("core.results._head_sha", lambda: "sha")  # the fake runs write results: no git subprocess
    _scored("dense", 2, "dense-cpu-seed2", 1.0)              # seed 2's results, scored on a checkpoint since lost
    _scored("dense+sae", 2, "dense-cpu-seed2", 1.0)
    monkeypatch.setattr(grid, "missing", lambda task, preset, overrides: [("dense+sae:gated", 2), ("moex", 0)])
    started = []

    class Run:
        """Each run scores its model on the checkpoint on disk; the first trains the lost one again."""
        returncode, pid = 0, 1

        def __init__(self, cmd, env, **kwargs):
            model, seed = cmd[cmd.index("--model") + 1], int(cmd[cmd.index("--seed") + 1])
            started.append((model, seed))
            if not (tmp_path / "ckpt" / "chess" / "dense-cpu-seed2.json").exists():
                _checkpoint(tmp_path / "ckpt", "dense-cpu-seed2", 2.0, written=time.time() + 60)
            _scored(model, seed, "dense-cpu-seed2" if "dense" in model else "moex-cpu", 2.0)

        def poll(self):
            return 0
    monkeypatch.setattr(subprocess, "Popen", Run)
    grid.run_grid("chess", "cpu", jobs=1, dry_run=False)
    # what the retraining left behind is scored again before the rest of the grid
    assert started == [("dense+sae:gated", 2), ("dense", 2), ("dense+sae", 2), ("moex", 0)]
    assert grid.scored_on_earlier_weights("chess", "cpu") == []
