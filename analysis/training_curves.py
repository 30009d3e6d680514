"""Redraw a chess training curve (`results/chess/training_curve_<model>.png`) from its JSON, after
checking it still describes this repository's model and data:

    python -m analysis.training_curves [results/chess/training_curve_dense.json ...]
"""

from __future__ import annotations

import json

from core.errors import FILES_WHOLE, BenchError, run_command
from core.results import task_dir
from tasks.chess.training_curve import plot_curve, reach_estimate


def check_curve(record: dict, path) -> None:
    """Refuse a curve whose model shape or training data is not what its preset gives here: a curve is
    drawn only beside the checkpoints it describes."""
    from bench import registry
    from tasks.chess.task import ChessTask, train_data_fingerprint

    for field in ("model", "preset", "model_config", "data", "points"):
        if field not in record:
            raise BenchError(f"{path}: missing field {field!r}; not a training curve, not drawn")
    expected = registry.model_adapter(record["model"]).model_config(ChessTask.dense_config(record["preset"])).to_json()
    for key, want in expected.items():
        got = record["model_config"].get(key)
        if got != want:
            raise BenchError(f"{path}: model_config.{key} is {got!r} but {record['model']} at the "
                             f"{record['preset']} preset has {want!r}; curve from another model shape, not drawn")
    if record["data"] != train_data_fingerprint(record["preset"]):
        raise BenchError(f"{path}: data is {record['data']!r}, not the corpus here "
                         f"({train_data_fingerprint(record['preset'])}); "
                         f"curve from other data, not drawn")


def redraw(path) -> object:
    """The PNG beside a curve JSON, after checking it describes this repository's model and data."""
    from pathlib import Path

    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise BenchError(f"{path}: cannot read a curve ({e})") from None
    check_curve(record, path)
    return plot_curve(record, path.with_suffix(".png"))


def _redraw_all(names: list[str]) -> None:
    for name in names or [str(task_dir("chess") / "training_curve_dense.json")]:
        print(f"wrote {redraw(name)}")
        reach = reach_estimate(json.loads(open(name).read()))
        print(f"  best-layer probe F1 trend: {reach['f1_per_doubling']:+.4f} per doubling of tokens seen "
              f"(last {reach['fitted_points']} points); 0.9 at {reach['tokens_at_target']:.3g} tokens, "
              f"{reach['times_trained_tokens']:.3g} x those trained")


if __name__ == "__main__":
    import sys

    sys.exit(run_command(lambda: _redraw_all(sys.argv[1:]), on_interrupt=FILES_WHOLE))
