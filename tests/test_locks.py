"""Two processes that need one missing checkpoint train it once: the second waits, then loads it."""

import subprocess
import sys
import threading

from core.locks import exclusive


def test_a_held_lock_makes_the_second_holder_wait_and_say_why(tmp_path):
    lock = tmp_path / "train.lock"
    # The holder keeps the lock until its stdin closes, so the test decides when it is released.
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys; from pathlib import Path; from core.locks import exclusive\n"
        f"with exclusive(Path({str(lock)!r}), 'busy'):\n"
        "    print('held', flush=True); sys.stdin.read()")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    said, entered = [], threading.Event()

    def second():
        with exclusive(lock, "dense-cpu-seed1 is being trained by another process", say=said.append):
            entered.set()

    waiter = threading.Thread(target=second)
    waiter.start()
    assert not entered.wait(1.0), "the second holder entered while the first held the lock"
    holder.stdin.close()
    holder.wait(timeout=60)
    assert entered.wait(60), "the second holder never got the lock after the first let go"
    waiter.join()
    assert said == [f"dense-cpu-seed1 is being trained by another process (pid {holder.pid}); waiting for it to finish"]


def test_a_free_lock_is_taken_silently_and_released_even_on_error(tmp_path):
    lock, said = tmp_path / "sub" / "train.lock", []
    try:
        with exclusive(lock, "busy", say=said.append):
            raise RuntimeError("training failed")
    except RuntimeError:
        pass
    with exclusive(lock, "busy", say=said.append):
        pass
    assert said == []


def test_the_second_load_or_train_loads_what_the_first_trained(tmp_path, monkeypatch, capsys):
    from bench import model_store, registry

    monkeypatch.setattr("core.paths.CHECKPOINTS", tmp_path / "checkpoints")
    monkeypatch.setattr(model_store, "RUNS", tmp_path / "runs")
    task, dense = registry.task("chess"), registry.model_adapter("dense")
    trained, training, second_waits = [], threading.Event(), threading.Event()
    real_train = model_store._train

    def gated_train(*args):
        trained.append(args[1:4])
        training.set()         # the first caller holds the lock now
        second_waits.wait(60)  # train only once the second caller is queued behind it
        return real_train(*args)

    monkeypatch.setattr(model_store, "_train", gated_train)
    outcome = {}

    def first():
        try:
            outcome["first"] = model_store.load_or_train(dense, task, "tiny", 0, "cpu")[2]
        except BaseException as e:  # noqa: BLE001 - reported by the assertion below
            outcome["first"] = e

    thread = threading.Thread(target=first)
    thread.start()
    assert training.wait(120), "the first caller never started training"
    said = []
    real_exclusive = model_store.exclusive

    def exclusive_noting_the_wait(path, message, say=print):
        return real_exclusive(path, message, say=lambda line: (said.append(line), second_waits.set()))

    monkeypatch.setattr(model_store, "exclusive", exclusive_noting_the_wait)
    _, _, stem = model_store.load_or_train(dense, task, "tiny", 0, "cpu")
    thread.join()
    assert outcome["first"] == stem, outcome
    assert len(trained) == 1, trained
    assert said and "is being trained by another process" in said[0]
    assert "trained meanwhile by the other process; loading it" in capsys.readouterr().out


def test_a_dictionary_fit_runs_once_when_two_callers_need_it(tmp_path, monkeypatch, capsys):
    """SAEs, transcoders and semi-NMF factors all go through refit_if_stale: the second caller waits for
    the first's fit and uses it, instead of fitting the same folder again and racing its rename."""
    import json
    from types import SimpleNamespace

    from bench import sae_store

    monkeypatch.delenv("MOEXBENCH_NO_TRAIN", raising=False)
    monkeypatch.setattr(sae_store, "RUNS", tmp_path / "runs")
    folder, record = tmp_path / "checkpoints" / "chess" / "dense_sae-topk-tiny", {"hook": "blocks.1.mlp.hook_post"}
    adapter, task = SimpleNamespace(name="dense+sae"), SimpleNamespace(name="chess", own_data=lambda: None)
    fits, fitting, second_waits = [], threading.Event(), threading.Event()

    def fit(why):
        fits.append(why)
        fitting.set()
        second_waits.wait(60)  # save only once the second caller is queued behind the lock
        folder.mkdir(parents=True)
        (folder / "moexbench.json").write_text(json.dumps(record))

    first = threading.Thread(target=sae_store.refit_if_stale, args=(folder, record, adapter, task, "tiny", "SAE", fit))
    first.start()
    assert fitting.wait(60), "the first caller never started fitting"
    said = []
    real_exclusive = sae_store.exclusive
    monkeypatch.setattr(sae_store, "exclusive", lambda path, message, say=print: real_exclusive(
        path, message, say=lambda line: (said.append(line), second_waits.set())))
    sae_store.refit_if_stale(folder, record, adapter, task, "tiny", "SAE", fit)
    first.join()
    assert fits == ["none saved"], fits
    assert said and "is being fitted by another process" in said[0]
    assert "was fitted meanwhile by the other process; using it" in capsys.readouterr().out
    assert not any((tmp_path / "checkpoints").rglob("*.lock")), "a lock file landed beside the committed folders"
    assert (tmp_path / "runs" / "fits" / "chess" / "dense_sae-topk-tiny.lock").exists()
