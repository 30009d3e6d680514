"""Two processes that need one missing checkpoint train it once: the second waits, then loads it."""

import subprocess
import sys
import threading
import time

from core.locks import exclusive


def test_a_held_lock_makes_the_second_holder_wait_and_say_why(tmp_path):
    lock = tmp_path / "train.lock"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from core.locks import exclusive\n"
        f"with exclusive(Path({str(lock)!r}), 'busy'):\n"
        "    print('held', flush=True); time.sleep(1.5)")], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    said, start = [], time.perf_counter()
    with exclusive(lock, "dense-cpu-seed1 is being trained by another process", say=said.append):
        waited = time.perf_counter() - start
    holder.wait()
    assert waited > 0.5, "the second holder did not wait for the first"
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


def test_the_second_load_or_train_loads_what_the_first_trained(tmp_path, monkeypatch):
    from bench import model_store, registry
    from models.checkpoint import read_meta

    monkeypatch.setattr(model_store, "CHECKPOINTS", tmp_path / "checkpoints")
    monkeypatch.setattr(model_store, "RUNS", tmp_path / "runs")
    task = registry.task("chess")
    trained = []
    real_train = model_store._train

    def counting_train(*args):
        trained.append(args[1:4])
        time.sleep(0.5)  # long enough that the other thread is waiting on the lock
        return real_train(*args)

    monkeypatch.setattr(model_store, "_train", counting_train)
    dense = registry.model_adapter("dense")
    first = threading.Thread(target=model_store.load_or_train, args=(dense, task, "tiny", 0, "cpu"))
    first.start()
    time.sleep(0.2)
    adapter, meta, stem = model_store.load_or_train(dense, task, "tiny", 0, "cpu")
    first.join()
    assert len(trained) == 1 and read_meta(stem) is not None
