"""The character-format recipe search: which model shape, data volume and learning rate learn the
board fastest per CPU second on this machine (kept for its committed results; the move format's
search is chess_move_recipe.py). Each arm trains a dense chess model from scratch for the same number of
steps and probes every layer's residual stream at each validation step (the training curve's probe),
so arms compare at equal characters and, through the recorded seconds, at equal CPU time.

    python -m experiments.chess_char_recipe --arms base,data-5k --threads 1   # one arm per thread
    python -m experiments.chess_char_recipe --report                          # table + figure

Each arm resumes from runs/chess/recipe/<arm>/ and writes results/chess/recipe/<arm>.json.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import dataclass

from core.errors import BenchError
from experiments.arm_cli import arms_main, best_f1, plot_arms


@dataclass(frozen=True)
class Arm:
    name: str
    why: str
    n_layers: int = 6
    d_model: int = 128
    n_heads: int = 4
    train_games: int = 0      # 0: the whole train split less the validation games
    lr: float = 2e-3


ARMS = {a.name: a for a in [
    Arm("base", "the cpu preset's shape and data (6 x 128, all 20,499 training games)"),
    Arm("data-5k", "same, 5,000 unique games: does repetition cost board knowledge?", train_games=5000),
    Arm("data-1k", "same, 1,000 unique games: the memorisation end", train_games=1000),
    Arm("wide-4x192", "shallower and wider at a similar step cost", n_layers=4, d_model=192),
    Arm("narrow-8x96", "deeper and narrower", n_layers=8, d_model=96),
    Arm("small-4x128", "fewer layers, same width: cheaper steps", n_layers=4),
    Arm("lr-4e-3", "the base arm with twice the learning rate", lr=4e-3),
    Arm("wide-6x192", "the preset's depth at 1.5x the width", d_model=192),
    Arm("wide-4x256", "shallow and twice as wide", n_layers=4, d_model=256),
]}

STEPS, BATCH, EVAL_EVERY, N_CTX, N_VAL_GAMES = 1000, 32, 250, 256, 500


def _paths(arm: str):
    from bench.model_store import RUNS
    from core.results import task_dir

    return RUNS / "chess" / "recipe" / arm, task_dir("chess", "cpu") / "recipe"


def run_arm(arm: Arm, threads: int, progress: bool) -> dict:
    import torch

    from models.config import GPTConfig, TrainConfig
    from models.gpt import GPT
    from models.train import train
    from tasks.chess.corpus import read_split
    from tasks.chess.formats import FORMATS, packed_stream
    from tasks.chess.tokenizer import VOCAB
    from tasks.chess.training_curve import curve_point

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=len(VOCAB), n_ctx=N_CTX, d_model=arm.d_model, n_layers=arm.n_layers,
                    n_heads=arm.n_heads, d_mlp=4 * arm.d_model)
    recipe = TrainConfig(steps=STEPS, batch_size=BATCH, lr=arm.lr, min_lr=arm.lr / 10, warmup_steps=50,
                         eval_every=EVAL_EVERY, checkpoint_every_s=120)
    games = read_split("train")
    train_games, val_games = games[:-N_VAL_GAMES], games[-N_VAL_GAMES:]
    if arm.train_games:
        train_games = train_games[:arm.train_games]
    stream = packed_stream(FORMATS["chars"], train_games, N_CTX, seed=0)
    val = packed_stream(FORMATS["chars"], val_games, N_CTX, seed=10_000)
    val_tokens = torch.cat([val.batch(s, 16) for s in range(N_VAL_GAMES // 16)])
    run_dir, out_dir = _paths(arm.name)
    model = GPT(cfg)
    started = time.process_time()
    history = train(model, recipe, lambda step: stream.batch(step, BATCH), val_tokens, run_dir,
                    run_dir / "final", {"data": f"recipe arm {arm.name}", "train_games": len(train_games)},
                    {"arm": arm.name}, on_eval=curve_point, progress=progress)
    record = {"arm": dataclasses.asdict(arm), "threads": threads, "parameters": sum(p.numel() for p in model.parameters()),
              "train_characters_unique": sum(len(g) + 1 for g in train_games), "train_games": len(train_games),
              "train_config": dataclasses.asdict(recipe), "model_config": cfg.to_json(),
              "process_seconds_this_session": round(time.process_time() - started, 1),
              "points": history}
    out_dir.mkdir(parents=True, exist_ok=True)
    from core.results import atomic_write_text

    atomic_write_text(out_dir / f"{arm.name}.json", json.dumps(record, indent=2) + "\n")
    return record


def report() -> list:
    """results/chess/recipe/summary.md and recipe_search.png from the arms' JSON files."""
    _, out_dir = _paths("")
    records = [json.loads(p.read_text()) for p in sorted(out_dir.glob("*.json"))]
    if not records:
        raise BenchError(f"no arm results in {out_dir}; run python -m experiments.chess_char_recipe --arms base first")
    lines = ["# Chess recipe search, character format", "",
             f"Each arm: {STEPS} steps of {BATCH} x {N_CTX} characters, AdamW, 50 warmup steps, cosine to lr/10, "
             f"fp32, one thread per arm. Probe: the training curve's (multinomial logistic per square on "
             f"200 + 200 probe games), best layer and last layer. Generated by "
             f"`python -m experiments.chess_char_recipe --report`. Arms ran two at a time, one thread each, on the "
             f"2-core machine, at times beside other work: s/step compare arms roughly, not machines.", "",
             "| arm | params | unique train chars | epochs | s/step | probe F1 best layer | probe F1 last layer "
             "| val loss | probe F1 at 25% of steps | why |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        last, first = r["points"][-1], r["points"][0]
        epochs = last["tokens"] / r["train_characters_unique"]
        per_step = last["seconds"] / last["step"]
        last_layer = r["points"][-1]["probe_f1_by_layer"][str(r["model_config"]["n_layers"] - 1)]
        lines.append(f"| {r['arm']['name']} | {r['parameters'] / 1e6:.2f}M | {r['train_characters_unique'] / 1e6:.2f}M "
                     f"| {epochs:.1f} | {per_step:.2f} | {best_f1(last):.3f} | {last_layer:.3f} | {last['val_loss']:.3f} "
                     f"| {best_f1(first):.3f} | {r['arm']['why']} |")
    (out_dir / "summary.md").write_text("\n".join(lines) + "\n")
    figure = plot_arms(records, out_dir / "recipe_search.png", "characters",
                       "Chess recipe search: board knowledge of dense models by arm")
    return [out_dir / "summary.md", figure]


def main(argv=None) -> int:
    return arms_main(__doc__, ARMS, run_arm, report, argv)


if __name__ == "__main__":
    sys.exit(main())
