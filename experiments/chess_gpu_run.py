"""One short GPU lease, one whole chess run: data in, checkpoint, training curve and scores out.

    python -m experiments.chess_gpu_run --device cuda                 # the gpu preset (8 x 512, move format)
    python -m experiments.chess_gpu_run --preset gpu-smoke --device cpu   # the same path in seconds (tests)

Before training it times a few steps on the device and refuses a run whose remaining steps are
projected past --budget-min. The projection covers the steps and the validation points (validation
loss and the curve's probe, one of each timed); building the move tokens on a bare machine (a few
minutes for the 20 shards, then cached) and the final scoring (labels of 2,000 probe games, the
probe, the random-init floor) come on top, so leave them room.
Training resumes from runs/ if the lease ends early. The scores come from the same evaluation as
every other model (`make bench`), on the same device. The `gpu` preset needs the 20 shards of
`python -m tasks.chess.more_games` to exist.
"""

from __future__ import annotations

import sys
import time

from core.arguments import OneLineParser
from core.errors import BenchError, run_command

PROBE_STEPS = 10


def projected_minutes(model, preset: str, device: str, done_steps: int = 0) -> float:
    """Minutes the preset's remaining steps and validation points would take, from PROBE_STEPS timed
    steps and one timed validation point on a copy of the model."""
    import copy

    import torch

    from models.gpt import auxiliary_loss
    from core.validation import validation_loss
    from tasks.chess.presets import PRESETS
    from tasks.chess.task import ChessTask

    recipe = PRESETS[preset].train
    data = ChessTask.training_data(preset, seed=0)
    trial = copy.deepcopy(model).to(device)
    opt = torch.optim.AdamW(trial.parameters(), lr=recipe.lr)
    for step in range(PROBE_STEPS + 2):
        if step == 2:  # the first steps pay for kernel selection and allocation
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            started = time.perf_counter()
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=recipe.bf16):
            loss = trial(data.batch_fn(step).to(device), return_type="loss")
        opt.zero_grad()
        (loss + auxiliary_loss(trial)).backward()
        opt.step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    per_step = (time.perf_counter() - started) / PROBE_STEPS
    started = time.perf_counter()
    validation_loss(trial, data.val_tokens.to(device), recipe.batch_size, recipe.bf16)
    on_eval = ChessTask.eval_callback(preset)
    if on_eval is not None:
        on_eval(trial, 0)
    per_point = time.perf_counter() - started
    points = recipe.steps // recipe.eval_every - done_steps // recipe.eval_every
    return (per_step * (recipe.steps - done_steps) + per_point * points) / 60


def run(model_name: str, preset: str, device: str, budget_min: float) -> dict:
    from bench import registry
    from bench.model_store import build_random, refuse_training_over, run_dir, train_model
    from bench.runner import run_bench
    from core.results import load_result
    from models.train import read_state_meta

    task, adapter_cls = registry.task("chess"), registry.model_adapter(model_name)
    registry.check_preset(preset, task)
    refuse_training_over(adapter_cls, task, preset, 0)  # before the lease's time goes on timing steps
    state = run_dir("chess", model_name, preset, 0)
    done = read_state_meta(state)["step"] if (state / "state.safetensors").exists() else 0
    minutes = projected_minutes(build_random(adapter_cls, task, preset, 0), preset, device, done)
    print(f"{model_name} at {preset} on {device}: about {minutes:.1f} min of training and validation "
          f"(budget {budget_min:g})")
    if minutes > budget_min:
        raise BenchError(f"projected {minutes:.1f} min of training and validation exceeds the budget of "
                         f"{budget_min:g} min; cut the preset's steps or raise --budget-min")
    started = time.time()
    stem = train_model(adapter_cls, task, preset, 0, device)
    trained = time.time() - started
    path = run_bench(adapter_cls, task, task.Config(), preset, 0, device)
    metrics = load_result(path)["metrics"]
    print(f"trained {stem} in {trained / 60:.1f} min; scored in {(time.time() - started - trained) / 60:.1f} min")
    return {"checkpoint": stem, "result": path, "metrics": metrics}


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="dense")
    parser.add_argument("--preset", default="gpu")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--budget-min", type=float, default=10.0, help="refuse a run projected to take longer")
    args = parser.parse_args(argv)

    def body():
        out = run(args.model, args.preset, args.device, args.budget_min)
        m = out["metrics"]
        print(f"probe F1 {m['probe_f1']:.3f} (random init {m.get('probe_f1_random_init', float('nan')):.3f}), "
              f"legal moves {m.get('legal_move_rate', float('nan')):.3f}, coverage {m['coverage']:.3f}, "
              f"reconstruction {m['reconstruction']:.3f}; wrote {out['result']}")
    return run_command(body)


if __name__ == "__main__":
    sys.exit(main())
