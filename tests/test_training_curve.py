"""The board-knowledge curve figure draws only curves of this repository's model shape and corpus."""

import json
from pathlib import Path

import pytest

from core.errors import BenchError
from tasks.chess.task import ChessTask, train_data_fingerprint
from analysis.training_curves import redraw
from tasks.chess.training_curve import reach_estimate


def _curve(tmp_path: Path, **changes) -> Path:
    record = {"model": "dense", "preset": "tiny", "model_config": ChessTask.dense_config("tiny").to_json(),
              "data": train_data_fingerprint("tiny"),
              "points": [{"tokens": 1000 * i, "seconds": 60 * i, "val_loss": 2.0 - i / 10, "probe_f1_by_layer": {"0": 0.1 * i}}
                         for i in (1, 2)]}
    record.update(changes)
    path = tmp_path / "training_curve_dense.json"
    path.write_text(json.dumps(record))
    return path


def test_a_matching_curve_is_drawn(tmp_path):
    import matplotlib.image

    png = matplotlib.image.imread(redraw(_curve(tmp_path)))
    # three panels side by side: F1 against tokens, F1 against minutes, validation loss (14 x 3.8 in at 120 dpi)
    assert png.shape[:2] == (456, 1680)


def test_a_curve_of_another_shape_or_corpus_is_refused_and_not_drawn(tmp_path):
    wide = {**ChessTask.dense_config("tiny").to_json(), "d_model": 64}
    with pytest.raises(BenchError, match="model_config.d_model is 64 but dense at the tiny preset has 32"):
        redraw(_curve(tmp_path, model_config=wide))
    with pytest.raises(BenchError, match="curve from other data"):
        redraw(_curve(tmp_path, data="chess train split sha256 0000"))
    with pytest.raises(BenchError, match="missing field 'preset'"):
        redraw(_write(tmp_path, {"model": "dense"}))
    assert not (tmp_path / "training_curve_dense.png").exists()


def _write(tmp_path, record):
    path = tmp_path / "training_curve_dense.json"
    path.write_text(json.dumps(record))
    return path


def test_reach_estimate_extends_the_log_linear_trend_of_the_best_layer():
    # Best layer F1 = 0.1 + 0.05 k at 2^k characters; layer "0" is worse and must be ignored. The first
    # half (k = 1..4) is left out, the line through k = 5..8 reaches 0.9 at k = 16.
    points = [{"tokens": 2 ** k, "probe_f1_by_layer": {"0": 0.0, "1": 0.1 + 0.05 * k}} for k in range(1, 9)]
    reach = reach_estimate({"points": points})
    assert reach["fitted_points"] == 4
    assert reach["f1_per_doubling"] == pytest.approx(0.05)
    assert reach["tokens_at_target"] == pytest.approx(2 ** 16, rel=1e-6)
    assert reach["times_trained_tokens"] == pytest.approx(2 ** 8, rel=1e-6)
