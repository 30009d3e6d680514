"""Chess presets: the dense-form model shape and the training recipe, per size.

Adapters turn the dense shape into their own (an MoE keeps the active width equal), so every model
of a preset sees the same tokens. `tiny` and `tiny-moves` are for tests (seconds), `cpu` the embedded
default (80-90 minutes per model on one thread here), `short` a third of it, for the width sweep with
`short-w128` and `short-w384` (the paper's Fig. 3/5 counterpart), `gpu` for one short GPU lease, and
`paper` the MoE-X paper's Table 6 (docs/moex.md section 9), for a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from models.config import TrainConfig
from tasks.chess.formats import game_format


@dataclass(frozen=True)
class ChessPreset:
    n_layers: int
    n_heads: int
    d_model: int
    n_ctx: int
    train: TrainConfig
    n_val_games: int        # held out of the train split for validation loss
    n_probe_games: int      # games from each probe split the evaluation reads (20 positions each)
    n_stat_games: int       # train-split games whose every position gives the max/alive statistics
    format: str = "chars"   # how games become tokens (formats.py): chars or moves
    more_shards: int = 0    # shards of data/chess/more/ trained on beside the train split
    n_curve_games: int = 200  # games of each probe split the training curve's probe reads

    def model_shape(self) -> dict:
        return {"vocab_size": game_format(self.format).vocab_size, "n_ctx": self.n_ctx, "d_model": self.d_model,
                "n_layers": self.n_layers, "n_heads": self.n_heads, "d_mlp": 4 * self.d_model}


PRESETS = {
    "tiny": ChessPreset(
        n_layers=4, n_heads=2, d_model=32, n_ctx=256,
        train=TrainConfig(steps=40, batch_size=8, lr=3e-3, min_lr=3e-4, warmup_steps=5, eval_every=20,
                          checkpoint_every_s=60),
        n_val_games=16, n_probe_games=40, n_stat_games=40),
    # The move format's recipe (experiments/chess_move_recipe.py): 4 x 256, one token per ply, a whole
    # game in context, the train split and 6 shards of more games (about 80,500 unique games), 7,000
    # steps of 32 x 64 moves (14M moves, about three passes): 80-90 minutes of one thread here. fp32: bf16 made
    # a step 1.56-1.86x slower on this CPU (`make perf`, dense_step_seconds_by_variant).
    "cpu": ChessPreset(
        n_layers=4, n_heads=4, d_model=256, n_ctx=64,
        train=TrainConfig(steps=7000, batch_size=32, lr=2e-3, min_lr=2e-4, warmup_steps=100, bf16=False,
                          eval_every=300, checkpoint_every_s=180),
        n_val_games=500, n_probe_games=1000, n_stat_games=500, format="moves", more_shards=6),
    # The cpu recipe cut to a third (2,300 steps, 4.7M moves), the middle of the width sweep below: the
    # seeds and the Table 3/4 corners run at `cpu` itself. Its numbers land in results/chess/short/ and
    # are compared only with the sweep's other widths.
    "short": ChessPreset(
        n_layers=4, n_heads=4, d_model=256, n_ctx=64,
        train=TrainConfig(steps=2300, batch_size=32, lr=2e-3, min_lr=2e-4, warmup_steps=100, bf16=False,
                          eval_every=300, checkpoint_every_s=180),
        n_val_games=500, n_probe_games=1000, n_stat_games=500, format="moves", more_shards=6),
    # The move format at test size: one token per ply, a whole game in context.
    "tiny-moves": ChessPreset(
        n_layers=4, n_heads=2, d_model=32, n_ctx=64,
        train=TrainConfig(steps=40, batch_size=8, lr=3e-3, min_lr=3e-4, warmup_steps=5, eval_every=20,
                          checkpoint_every_s=60),
        n_val_games=16, n_probe_games=40, n_stat_games=40, format="moves"),
    # The paper's shape (8 x 512) in the move format, for one short GPU lease: all the generated games
    # (train split + 20 shards of more games, about 12M moves) seen about 8 times in 98M moves, bf16.
    # `python -m experiments.chess_gpu_run` does the whole run and refuses to start one that would not fit.
    "gpu": ChessPreset(
        n_layers=8, n_heads=8, d_model=512, n_ctx=64,
        train=TrainConfig(steps=6000, batch_size=256, lr=1e-3, min_lr=1e-4, warmup_steps=300, bf16=True,
                          eval_every=1000, checkpoint_every_s=120),
        n_val_games=500, n_probe_games=1000, n_stat_games=500, format="moves", more_shards=20),
    "paper": ChessPreset(
        n_layers=8, n_heads=8, d_model=512, n_ctx=1023,
        train=TrainConfig(steps=600_000, batch_size=100, lr=3e-4, min_lr=3e-5, warmup_steps=2000, bf16=True,
                          weight_decay=0.1, eval_every=2000, checkpoint_every_s=600),
        n_val_games=2000, n_probe_games=1000, n_stat_games=500),
}
# The width sweep (the paper's Fig. 3 and 5: coverage and reconstruction against model width): the
# `short` recipe, same moves and steps, at half and 1.5x its width; `short` itself is width 256.
# Heads stay 4, so the head width scales with the model.
for _width in (128, 384):
    PRESETS[f"short-w{_width}"] = replace(PRESETS["short"], d_model=_width)
WIDTH_SWEEP = ("short-w128", "short", "short-w384")
# The gpu preset's script at test size, on a CPU in seconds: the same path, curve included.
PRESETS["gpu-smoke"] = replace(PRESETS["tiny-moves"], n_curve_games=10)
