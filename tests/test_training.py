"""Training on the real corpus at the tiny preset: loss falls, resume is exact, bad states stop."""

import dataclasses
import json

import pytest
import torch

from core.errors import BenchError
from models.checkpoint import load_model
from models.gpt import GPT
from models.train import train
from tasks.chess.task import ChessTask


def _setup(tmp_path, steps=12, **overrides):
    torch.manual_seed(0)
    model = GPT(ChessTask.dense_config("tiny"))
    data = ChessTask.training_data("tiny", seed=0)
    cfg = dataclasses.replace(ChessTask.train_config("tiny", 0), steps=steps, eval_every=6, **overrides)
    return model, cfg, data


def _run(tmp_path, model, cfg, data, batch_fn=None, name="run"):
    return train(model, cfg, batch_fn or data.batch_fn, data.val_tokens, tmp_path / name, tmp_path / f"{name}-final",
                 data.fingerprint, {"test": True}, progress=False)


def test_loss_falls_on_real_games(tmp_path):
    model, cfg, data = _setup(tmp_path, steps=40)
    history = _run(tmp_path, model, cfg, data)
    assert history[-1]["val_loss"] < history[0]["val_loss"] - 0.3
    assert history[-1]["val_loss"] < 3.0  # log(32) = 3.47 is the untrained loss


def test_resume_after_interrupt_gives_the_same_weights(tmp_path):
    model, cfg, data = _setup(tmp_path, checkpoint_every_s=0.0)
    _run(tmp_path, model, cfg, data, name="straight")

    def interrupted(step):
        if step == 7:
            raise KeyboardInterrupt
        return data.batch_fn(step)

    model2, _, _ = _setup(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, model2, cfg, data, batch_fn=interrupted, name="resumed")
    assert json.loads((tmp_path / "resumed" / "state.json").read_text())["step"] == 7
    model3, _, _ = _setup(tmp_path)  # a fresh process: new random init, everything from the checkpoint
    _run(tmp_path, model3, cfg, data, name="resumed")
    a, _ = load_model(tmp_path / "straight-final")
    b, _ = load_model(tmp_path / "resumed-final")
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), name


def test_a_resumed_run_counts_the_time_it_trained_before_the_interruption(tmp_path):
    """Steps 7-8 ran before the kill and are kept: the record at step 12 must include their time."""
    model, cfg, data = _setup(tmp_path, checkpoint_every_s=0.0)

    def slow_then_interrupted(step):
        if step == 9:
            raise KeyboardInterrupt
        if step in (7, 8):
            import time

            time.sleep(0.5)
        return data.batch_fn(step)

    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, model, cfg, data, batch_fn=slow_then_interrupted)
    saved = json.loads((tmp_path / "run" / "state.json").read_text())
    assert saved["step"] == 9 and saved["seconds_since_eval"] >= 1.0
    model2, _, _ = _setup(tmp_path)
    history = _run(tmp_path, model2, cfg, data)
    assert history[1]["seconds"] - history[0]["seconds"] >= 1.0


def _burn_cpu(seconds: float) -> None:
    import time

    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_a_resumed_run_counts_the_cpu_time_it_spent_before_the_interruption(tmp_path):
    """CPU time, not a sleep: steps 7-8 burn 0.5 s of CPU each before the kill; the record at step 12
    must hold them, and no record may hold more CPU than the wall-clock time it spans allows."""
    model, cfg, data = _setup(tmp_path, checkpoint_every_s=0.0)

    def busy_then_interrupted(step):
        if step == 9:
            raise KeyboardInterrupt
        if step in (7, 8):
            _burn_cpu(0.5)
        return data.batch_fn(step)

    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, model, cfg, data, batch_fn=busy_then_interrupted)
    assert json.loads((tmp_path / "run" / "state.json").read_text())["cpu_seconds_since_eval"] >= 1.0
    model2, _, _ = _setup(tmp_path)
    history = _run(tmp_path, model2, cfg, data)
    assert history[0]["cpu_seconds"] > 0
    assert history[1]["cpu_seconds"] - history[0]["cpu_seconds"] >= 1.0


def test_a_run_resumed_from_a_state_without_cpu_time_records_none(tmp_path):
    """A state saved before CPU time was kept cannot know the run's CPU total: later records leave it
    out rather than count only the part after the resume."""
    model, cfg, data = _setup(tmp_path, checkpoint_every_s=0.0)

    def interrupted(step):
        if step == 9:
            raise KeyboardInterrupt
        return data.batch_fn(step)

    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, model, cfg, data, batch_fn=interrupted)
    state = tmp_path / "run" / "state.safetensors"
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(state), "pt") as f:
        meta = json.loads(f.metadata()["state"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    del meta["cpu_seconds_since_eval"]
    for record in meta["history"]:
        del record["cpu_seconds"]
    save_file(tensors, str(state), metadata={"state": json.dumps(meta)})
    model2, _, _ = _setup(tmp_path)
    history = _run(tmp_path, model2, cfg, data)
    assert len(history) == 2 and not any("cpu_seconds" in r for r in history)


def test_resume_with_a_changed_recipe_names_the_field(tmp_path):
    model, cfg, data = _setup(tmp_path, steps=4, checkpoint_every_s=0.0)
    _run(tmp_path, model, cfg, data)
    state_before = (tmp_path / "run" / "state.safetensors").read_bytes()
    model2, _, _ = _setup(tmp_path)
    changed = dataclasses.replace(cfg, steps=8, lr=cfg.lr * 2)
    with pytest.raises(BenchError, match=r"train_config\.lr differs \(checkpoint 0\.0[0-9]*, now 0\.0[0-9]*\)"):
        _run(tmp_path, model2, changed, data)
    assert (tmp_path / "run" / "state.safetensors").read_bytes() == state_before


def test_nan_loss_stops_and_keeps_the_last_good_state(tmp_path):
    model, cfg, data = _setup(tmp_path, steps=10, checkpoint_every_s=0.0)

    def poisoned(step):
        if step == 5:
            with torch.no_grad():
                model.unembed.weight.fill_(float("nan"))
        return data.batch_fn(step)

    with pytest.raises(BenchError, match="last good state kept"):
        _run(tmp_path, model, cfg, data, batch_fn=poisoned)
    assert json.loads((tmp_path / "run" / "state.json").read_text())["step"] == 5
    assert not (tmp_path / "run-final.safetensors").exists()
