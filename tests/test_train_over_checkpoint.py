"""`make train` over a finished checkpoint: refused unless an unfinished run is there to resume."""

import json
import shutil

import pytest
import torch
from safetensors.torch import save_file

from bench import model_store, registry
from core.errors import BenchError
from models.checkpoint import save_model
from models.gpt import GPT
from tasks.chess.task import ChessTask

DENSE = registry.model_adapter("dense")


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setattr("core.paths.CHECKPOINTS", tmp_path / "checkpoints")
    monkeypatch.setattr(model_store, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(ChessTask, "own_data", staticmethod(lambda: None))
    return tmp_path


def _finished_checkpoint(seed=0):
    stem = model_store.checkpoint_stem("chess", "dense", "tiny", seed)
    stem.parent.mkdir(parents=True, exist_ok=True)
    save_model(stem, GPT(DENSE.model_config(ChessTask.dense_config("tiny"))), {})
    return stem


def _state(step: int, seed=0):
    run = model_store.run_dir("chess", "dense", "tiny", seed)
    run.mkdir(parents=True)
    meta = {"step": step, "fingerprint": {}, "history": []}
    save_file({"x": torch.zeros(1)}, str(run / "state.safetensors"), metadata={"state": json.dumps(meta)})
    return run


def _refuse(seed=0):
    model_store.refuse_training_over(DENSE, ChessTask, "tiny", seed)


def test_nothing_trained_yet_or_an_unfinished_run_goes_ahead(store):
    _refuse()  # no checkpoint
    _finished_checkpoint()
    _state(ChessTask.train_config("tiny", 0).steps - 1)
    _refuse()  # a retrain interrupted one step short resumes


@pytest.mark.parametrize("seed", [0, 2])
def test_a_finished_checkpoint_without_a_run_is_refused_naming_its_files(store, seed):
    stem = _finished_checkpoint(seed)
    with pytest.raises(BenchError) as refused:
        _refuse(seed)
    message = str(refused.value)
    assert f"{stem}.safetensors is already trained" in message
    assert f"delete {stem.name}.json and its weights ({stem.name}.safetensors and any {stem.name}.<n>" in message
    assert f"SEED={seed}" in message


def test_a_finished_runs_state_or_a_state_json_alone_does_not_let_it_train_again(store):
    _finished_checkpoint()
    run = _state(ChessTask.train_config("tiny", 0).steps)  # the state train() keeps after its last step
    with pytest.raises(BenchError, match="is already trained"):
        _refuse()
    (run / "state.safetensors").unlink()
    (run / "state.json").write_text(json.dumps({"step": 3, "fingerprint": {}, "history": []}))
    with pytest.raises(BenchError, match="is already trained"):  # train() would start from step 0
        _refuse()


def test_on_your_own_data_the_committed_checkpoints_get_the_own_data_message(tmp_path, monkeypatch):
    from core.own_data import COMMITTED_CHECKPOINTS

    monkeypatch.setattr("core.paths.CHECKPOINTS", COMMITTED_CHECKPOINTS)  # read only: refused before any write
    monkeypatch.setattr(ChessTask, "own_data", staticmethod(lambda: tmp_path))
    with pytest.raises(BenchError, match="would be trained on your data .* set MOEXBENCH_CHECKPOINTS"):
        _refuse()


def test_train_model_itself_refuses_so_every_caller_is_guarded(store):
    # `make train` and experiments/chess_gpu_run.py both reach train_model; neither may write over a finished
    # checkpoint. The bench's load_or_train (only_if_missing) loads it instead of training.
    stem = _finished_checkpoint()
    before = stem.with_suffix(".safetensors").read_bytes()
    with pytest.raises(BenchError, match="is already trained"):
        model_store.train_model(DENSE, ChessTask, "tiny", 0, "cpu", progress=False)
    assert model_store.train_model(DENSE, ChessTask, "tiny", 0, "cpu", progress=False, only_if_missing=True) == stem
    assert stem.with_suffix(".safetensors").read_bytes() == before


def test_a_training_refused_before_it_wrote_anything_leaves_no_empty_folder(store, monkeypatch):
    def bad_data(preset, seed):
        raise BenchError("games.txt line 3: illegal move")

    monkeypatch.setattr(ChessTask, "training_data", staticmethod(bad_data))
    with pytest.raises(BenchError, match="illegal move"):
        model_store.train_model(DENSE, ChessTask, "tiny", 0, "cpu", progress=False)
    assert not (store / "checkpoints").exists()
    # only the run's lock stays: another process may be waiting on it (bench/model_store.py)
    assert [p.name for p in (store / "runs").rglob("*") if p.is_file()] == ["train.lock"]
    # Folders that were there before stay, and so does a run's saved state.
    shutil.rmtree(store / "runs")
    run = _state(3)
    (store / "checkpoints" / "chess").mkdir(parents=True)
    with pytest.raises(BenchError, match="illegal move"):
        model_store.train_model(DENSE, ChessTask, "tiny", 0, "cpu", progress=False)
    assert (store / "checkpoints" / "chess").is_dir() and (run / "state.safetensors").exists()
