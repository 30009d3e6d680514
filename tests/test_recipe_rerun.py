"""Running a finished recipe arm again (a queue restarted from the top) keeps its full evaluation: the
score belongs to the same final checkpoint, and scoring it again would cost a core for half an hour."""

from __future__ import annotations

import json
from types import SimpleNamespace

import torch

from experiments import chess_move_recipe as recipe


def _fake_training(monkeypatch, tmp_path, points):
    import models.train
    from tasks.chess import presets
    from tasks.chess.task import ChessTask

    monkeypatch.setattr(presets, "PRESETS", dict(presets.PRESETS))  # the arm's preset is registered on a copy
    monkeypatch.setattr(recipe, "OUT", tmp_path / "out")
    monkeypatch.setattr(recipe, "RUNS", tmp_path / "runs")
    data = SimpleNamespace(batch_fn=None, val_tokens=torch.zeros(1, 2, dtype=torch.long), fingerprint={"games": 1})
    monkeypatch.setattr(ChessTask, "training_data", classmethod(lambda cls, key, seed: data))
    monkeypatch.setattr(ChessTask, "eval_callback", classmethod(lambda cls, key: None))
    monkeypatch.setattr(models.train, "train", lambda *args, **kwargs: list(points))


def _earlier_record(tmp_path, points):
    out = tmp_path / "out" / "w256-d2.json"
    out.parent.mkdir(parents=True)
    out.write_text(json.dumps({"points": points, "final_eval": {"metrics": {"probe_f1": 0.5}}}))
    return out


def test_a_finished_arm_run_again_keeps_its_score(monkeypatch, tmp_path):
    points = [{"step": 300, "val_loss": 3.5}]
    _fake_training(monkeypatch, tmp_path, points)
    out = _earlier_record(tmp_path, points)
    recipe.run_arm(recipe.ARMS["w256-d2"], threads=1, progress=False)
    assert json.loads(out.read_text())["final_eval"] == {"metrics": {"probe_f1": 0.5}}
    # and scoring it again returns the stored score without loading a checkpoint (there is none here)
    assert recipe.score_arm(recipe.ARMS["w256-d2"], threads=1)["final_eval"]["metrics"]["probe_f1"] == 0.5


def test_an_arm_trained_further_drops_the_score_of_its_old_end(monkeypatch, tmp_path):
    _fake_training(monkeypatch, tmp_path, [{"step": 300, "val_loss": 3.5}, {"step": 600, "val_loss": 3.4}])
    out = _earlier_record(tmp_path, [{"step": 300, "val_loss": 3.5}])
    recipe.run_arm(recipe.ARMS["w256-d2"], threads=1, progress=False)
    assert "final_eval" not in json.loads(out.read_text())
