"""Superposition training step at the `paper` preset's shapes, for `make perf`: the fused step (the
default of tasks/superposition/training.py) against the straightforward one it replaced, and the
fused step with one uniform draw per entry (an opt-in that changes the random stream).

Shapes: 150 models (30 densities x 5 seeds) x batch 1,024 x 100 features for the dense sweep and
each MoE configuration (the `moe` toy form: tied linear experts, learned router), and the
specialisation run (100 models of 10 experts x 10, top-1). The three steps of one shape take turns
(perf/timing.py). From them, the paper preset's training time per model: steps x (the sweeps' steps
+ the specialisation runs', two gate inits for a learned router)."""

from __future__ import annotations

import torch

from perf.timing import interleaved_seconds
from tasks.superposition.presets import PRESETS
from tasks.superposition.toy_model import ToyModels, ToySpec
from tasks.superposition.training import training_step

PATHS = {"straightforward": dict(fused=False), "fused": dict(fused=True),
         "fused_one_draw": dict(fused=True, one_draw=True)}


def paper_shapes(preset: str = "paper") -> dict:
    """Name -> (spec, number of models, density of each model) of every training run of a preset."""
    p = PRESETS[preset]
    density = torch.tensor(p.densities, dtype=torch.float32).repeat(p.seeds)
    shapes = {"dense": (ToySpec(p.n_features, 1, p.dense_width, 1), density)}
    for e, m, k in p.expert_configs:
        shapes[f"e{e}m{m}k{k}"] = (ToySpec(p.n_features, e, m, k), density)
    sp = p.specialisation
    shapes["specialisation"] = (ToySpec(sp.n_features, sp.n_experts, sp.d_expert, sp.top_k),
                                torch.full((sp.models_per_init,), sp.density))
    return shapes


def _steppers(spec: ToySpec, density: torch.Tensor, batch: int, lr: float) -> dict:
    """One training step per path, each on its own copy of the same models and data."""
    steppers = {}
    for name, options in PATHS.items():
        generator = torch.Generator().manual_seed(0)
        model = ToyModels(spec, len(density), generator)
        steppers[name] = training_step(model, density, torch.ones(spec.n_features), batch, lr, generator, **options)
    return steppers


def step_seconds(preset: str = "paper", repeats: int = 3, warmup: int = 1, batch: int | None = None) -> dict:
    """Median seconds per training step of every path at every shape of the preset; the ratios of
    the straightforward step over the others; the preset's projected training hours per model."""
    p = PRESETS[preset]
    batch = batch or p.batch
    seconds = {name: interleaved_seconds(_steppers(spec, density, batch, p.lr), repeats=repeats, warmup=warmup)
               for name, (spec, density) in paper_shapes(preset).items()}
    speedup = {name: {path: s["straightforward"] / s[path] for path in PATHS if path != "straightforward"}
               for name, s in seconds.items()}
    return {"preset": preset, "batch": batch, "seconds": seconds, "speedup": speedup,
            "projected_hours": projected_hours(seconds, p.steps, p.specialisation.steps)}


def projected_hours(seconds: dict, steps: int, special_steps: int) -> dict:
    """Training hours of the preset per model and path: the dense model trains its one sweep; an MoE
    with a learned router (moe, switch, moe-relu) its sweeps and the specialisation run twice (Xavier
    and k-hot gates), MoE-X its sweeps and the run once (no gate to initialise). Every MoE is timed on
    the `moe` form (linear experts, learned router). Evaluation is left out (minutes)."""
    configs = [name for name in seconds if name not in ("dense", "specialisation")]
    hours = {}
    for path in PATHS:
        sweeps = steps * sum(seconds[c][path] for c in configs)
        special = special_steps * seconds["specialisation"][path]
        hours[path] = {"dense": steps * seconds["dense"][path] / 3600, "moe": (sweeps + 2 * special) / 3600,
                       "moex": (sweeps + special) / 3600}
    return hours
