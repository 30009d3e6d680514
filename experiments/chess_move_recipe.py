"""Which dense chess model in the move format learns the board most per CPU-hour on this machine.

Each arm trains a dense model from scratch on one thread (one token per ply, a whole game in
context, AdamW with warmup and cosine) and probes every layer's residual stream at each validation
step with the training curve's probe, so arms compare at equal moves seen and, through the recorded
step seconds, at equal CPU time. Arms differ in one thing each: width, depth, learning rate, or the
number of unique games (at equal steps).

    python -m experiments.chess_move_recipe --arms w256-d4 --threads 1   # resumable
    python -m experiments.chess_move_recipe --score w256-d4 --threads 1  # the full evaluation of its end
    python -m experiments.chess_move_recipe --report                     # table + figure

An arm resumes from runs/chess/recipe_moves/<arm>/ and writes results/chess/recipe_moves/<arm>.json.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from core.errors import BenchError
from core.paths import ROOT, RUNS as RUNS_ROOT
from experiments.arm_cli import arms_main, best_f1, plot_arms

OUT = Path(os.environ.get("MOEXBENCH_RESULTS", ROOT / "results")) / "chess" / "recipe_moves"
RUNS = RUNS_ROOT / "chess" / "recipe_moves"


@dataclass(frozen=True)
class Arm:
    name: str
    why: str
    n_layers: int = 4
    d_model: int = 256
    lr: float = 2e-3
    steps: int = 3000
    more_shards: int = 1     # shards of data/chess/more/ beside the train split
    train_games: int = 0     # 0: all of them; else the first N training games (repeated)


ARMS = {a.name: a for a in [
    Arm("w256-d4", "4 x 256, the reference arm"),
    Arm("w384-d4", "1.5x the width", d_model=384),
    Arm("w512-d4", "twice the width", d_model=512),
    Arm("w256-d2", "half the depth", n_layers=2),
    Arm("w256-d6", "1.5x the depth", n_layers=6),
    Arm("w256-d4-lr1e-3", "half the learning rate", lr=1e-3),
    Arm("w256-d4-lr4e-3", "twice the learning rate", lr=4e-3),
    Arm("w256-d4-games5k", "5,000 unique games at equal steps", train_games=5000),
    Arm("w256-d4-games20k", "20,000 unique games at equal steps", train_games=20_000),
    Arm("w256-d4-shards10", "about 120,000 unique games at equal steps", more_shards=10),
    Arm("w256-d4-shards20", "about 220,000 unique games at equal steps", more_shards=20),
]}

BATCH, EVAL_EVERY, N_VAL_GAMES = 32, 300, 500


def preset_for(arm: Arm):
    """The arm as a chess preset in the move format, so training reads the task's own data path."""
    from models.config import TrainConfig
    from tasks.chess.presets import ChessPreset

    return ChessPreset(n_layers=arm.n_layers, n_heads=max(4, arm.d_model // 64), d_model=arm.d_model, n_ctx=64,
                       train=TrainConfig(steps=arm.steps, batch_size=BATCH, lr=arm.lr, min_lr=arm.lr / 10,
                                         warmup_steps=100, eval_every=EVAL_EVERY, checkpoint_every_s=120),
                       n_val_games=N_VAL_GAMES, n_probe_games=1000, n_stat_games=500, format="moves",
                       more_shards=arm.more_shards)


def run_arm(arm: Arm, threads: int, progress: bool) -> dict:
    import torch

    from core.results import atomic_write_text
    from models.config import GPTConfig
    from models.gpt import GPT
    from models.train import train
    from tasks.chess import presets
    from tasks.chess.task import ChessTask

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    key = f"recipe-{arm.name}"
    presets.PRESETS[key] = preset_for(arm)
    data = ChessTask.training_data(key, seed=0)
    batch_fn = data.batch_fn
    if arm.train_games:
        batch_fn = _first_games(key, arm.train_games)
    model = GPT(GPTConfig(**presets.PRESETS[key].model_shape()))
    recipe = presets.PRESETS[key].train
    history = train(model, recipe, batch_fn, data.val_tokens, RUNS / arm.name, RUNS / arm.name / "final",
                    {**data.fingerprint, "train_games": arm.train_games}, {"arm": arm.name},
                    on_eval=ChessTask.eval_callback(key), progress=progress)
    record = {"arm": dataclasses.asdict(arm), "threads": threads,
              "parameters": sum(p.numel() for p in model.parameters()),
              "train_config": dataclasses.asdict(recipe), "model_config": model.cfg.to_json(),
              "data": data.fingerprint, "points": history}
    old = OUT / f"{arm.name}.json"
    if old.exists():  # a finished arm run again: its score still belongs to the same final checkpoint
        before = json.loads(old.read_text())
        if "final_eval" in before and before["points"] == history:
            record["final_eval"] = before["final_eval"]
    OUT.mkdir(parents=True, exist_ok=True)
    atomic_write_text(OUT / f"{arm.name}.json", json.dumps(record, indent=2) + "\n")
    return record


def score_arm(arm: Arm, threads: int) -> dict:
    """The arm's final checkpoint through the chess evaluation itself (1000 + 1000 probe games, every
    layer probed, the random-init floor beside it), added to the arm's result as `final_eval`: the
    curve's probe reads 200 + 200 games, so this is what the same model scores as a bench result."""
    import torch

    from adapters.dense import DenseAdapter
    from core.results import atomic_write_text
    from models.checkpoint import load_model
    from models.gpt import GPT
    from tasks.chess import presets
    from tasks.chess.config import ChessConfig
    from tasks.chess.task import ChessTask

    torch.set_num_threads(threads)
    path = OUT / f"{arm.name}.json"
    if not path.exists():
        raise BenchError(f"arm {arm.name} has no result yet; train it first (--arms {arm.name})")
    if "final_eval" in json.loads(path.read_text()):
        print(f"{arm.name}: scored already (final_eval in {path}); delete that entry to score it again")
        return json.loads(path.read_text())
    key = f"recipe-{arm.name}"
    presets.PRESETS[key] = preset_for(arm)
    model, _ = load_model(RUNS / arm.name / "final")
    torch.manual_seed(1_000)
    floor = DenseAdapter(GPT(model.cfg).eval())
    # the task's block (-3) where the arm has one, else its first: a 2-block arm has no block -3. The arms
    # are compared by the probe's best layer, which this choice does not touch; it moves only coverage.
    layer = max(ChessConfig().layer, -model.cfg.n_layers)
    out = ChessTask.evaluate(DenseAdapter(model.eval()), floor, ChessConfig(probe_layers="all", layer=layer), key,
                             seed=0)
    record = json.loads(path.read_text())
    record["final_eval"] = {"metrics": out["metrics"], "layer": layer,
                            "probe_f1_by_layer": out["details"]["probe_f1_by_layer"],
                            "probe_f1_by_layer_random_init": out["details"]["random_init"]["probe_f1_by_layer"]}
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")
    return record


def _first_games(key: str, n_games: int):
    """Batches drawn from the first n training games only (same packing, same seed)."""
    import numpy as np
    import torch

    from tasks.chess.formats import PackedStream, flat_corpus, game_format
    from tasks.chess.presets import PRESETS
    from tasks.chess.task import training_files

    p = PRESETS[key]
    tokens, starts = flat_corpus(game_format(p.format), training_files(key)[0])
    if n_games >= len(starts) - p.n_val_games:
        raise BenchError(f"train_games {n_games} is more than the train split holds; use more_shards instead")
    end = int(starts[n_games])
    stream = PackedStream(torch.from_numpy(tokens[:end].astype(np.int64)), torch.from_numpy(starts[:n_games]),
                          p.n_ctx, seed=0)
    return lambda step: stream.batch(step, p.train.batch_size)


def report() -> list:
    records = [json.loads(p.read_text()) for p in sorted(OUT.glob("*.json"))]
    if not records:
        raise BenchError(f"no arm results in {OUT}; run python -m experiments.chess_move_recipe --arms w256-d4")
    lines = ["# Chess recipe in the move format", "",
             f"Dense models, one token per ply, context 64 (a whole game), batch {BATCH}, AdamW with 100 warmup "
             f"steps and cosine to lr/10, fp32, one thread per arm. The arms ran beside one to three other jobs, "
             f"so wall-clock minutes compare arms only roughly; moves seen is the fair axis. An arm trained "
             f"since training kept CPU time shows its CPU minutes in brackets, and its `F1 per CPU-hour` is "
             f"per CPU hour; an older arm's is per wall-clock hour, marked (wall). "
             f"Probe: the training curve's (multinomial logistic per square, 200 + 200 probe games). "
             f"Written by `python -m experiments.chess_move_recipe --report`.", "",
             "| arm | params | unique games | steps | moves seen | train minutes (CPU) | s/step | probe F1 best layer (which) "
             "| F1 per CPU-hour | val loss | full evaluation: probe F1 best layer (floor), legal moves | why |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        last = r["points"][-1]
        best_layer = max(last["probe_f1_by_layer"], key=last["probe_f1_by_layer"].get)
        minutes = last["seconds"] / 60
        cpu_minutes = last["cpu_seconds"] / 60 if "cpu_seconds" in last else None
        per_hour = f"{best_f1(last) / (cpu_minutes / 60):.2f}" if cpu_minutes else \
            f"{best_f1(last) / (minutes / 60):.2f} (wall)"
        lines.append(f"| {r['arm']['name']} | {r['parameters'] / 1e6:.2f}M | {unique_games(r['arm']):,} | {last['step']} "
                     f"| {last['tokens'] / 1e6:.2f}M "
                     f"| {minutes:.0f} ({'-' if cpu_minutes is None else f'{cpu_minutes:.0f}'}) "
                     f"| {last['seconds'] / last['step']:.2f} | {best_f1(last):.3f} ({best_layer}) "
                     f"| {per_hour} | {last['val_loss']:.3f} | {_final(r)} | {_why(r)} |")
    (OUT / "summary.md").write_text("\n".join(lines) + "\n")
    figure = plot_arms(records, OUT / "recipe_moves.png", "moves",
                       "Dense chess models in the move format: board knowledge by arm")
    games = _plot_games(records, OUT / "recipe_moves_games.png")
    return [OUT / "summary.md", figure] + ([games] if games else [])


def unique_games(arm: dict) -> int:
    """Distinct training games the arm reads, from the corpus card: its first `train_games`, or the
    train split less its validation games plus its shards' new unique games."""
    if arm.get("train_games"):
        return arm["train_games"]
    card = json.loads((ROOT / "data" / "chess" / "card.json").read_text())
    shards = [card["more_shards"][name]["games_unique_new"] for name in sorted(card.get("more_shards") or {})]
    if len(shards) < arm.get("more_shards", 0):
        raise BenchError(f"arm {arm['name']} reads {arm['more_shards']} shards; the card lists {len(shards)}")
    return card["files"]["train.txt.xz"]["games"] - N_VAL_GAMES + sum(shards[:arm.get("more_shards", 0)])


def _plot_games(records: list, path: Path):
    """Probe F1 (best layer, last curve point and full evaluation) against unique games, for the arms that
    differ from the reference arm only in their data (same model, steps and learning rate)."""
    reference = dataclasses.asdict(ARMS["w256-d4"])
    same = [r for r in records
            if all(r["arm"].get(k) == v for k, v in reference.items() if k not in ("name", "why", "more_shards", "train_games"))]
    if len(same) < 2:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from core.results import save_figure

    same.sort(key=lambda r: unique_games(r["arm"]))
    x = [unique_games(r["arm"]) for r in same]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(x, [best_f1(r["points"][-1]) for r in same], marker="o", label="training curve's probe (200 + 200 games)")
    full = [(n, max(r["final_eval"]["probe_f1_by_layer"].values())) for n, r in zip(x, same) if r.get("final_eval")]
    if full:
        ax.plot(*zip(*full), marker="s", label="full evaluation (1,000 + 1,000 games)")
    for n, r in zip(x, same):
        ax.annotate(r["arm"]["name"], (n, best_f1(r["points"][-1])), fontsize=7, textcoords="offset points", xytext=(4, -10))
    ax.set(xscale="log", xlabel="unique training games", ylabel="probe F1 (best layer)",
           title=f"At equal steps ({same[0]['points'][-1]['step']} of 32 x 64 moves)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)
    return path


def _why(record: dict) -> str:
    """The arm's reason as this file states it now (a result keeps the words it was trained under)."""
    arm = ARMS.get(record["arm"]["name"])
    return arm.why if arm else record["arm"]["why"]


def _final(record: dict) -> str:
    final = record.get("final_eval")
    if not final:
        return "-"
    best, floor = max(final["probe_f1_by_layer"].values()), max(final["probe_f1_by_layer_random_init"].values())
    return f"{best:.3f} ({floor:.3f}), {final['metrics'].get('legal_move_rate', float('nan')):.3f}"


def main(argv=None) -> int:
    return arms_main(__doc__, ARMS, run_arm, report, argv, score=score_arm)


if __name__ == "__main__":
    sys.exit(main())
