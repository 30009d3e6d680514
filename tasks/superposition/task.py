"""The superposition task: toy models with known features (docs/superposition.md). A registry model
is turned into its toy counterpart from what its adapter declares (dense or MoE MLP, hidden
activation, router, auxiliary loss), so the task never asks for the model's name."""

from __future__ import annotations

import dataclasses
import functools
import statistics

import torch

from core.errors import BenchError
from core.task import Task
from models.config import GPTConfig
from tasks.superposition.config import SuperpositionConfig
from tasks.superposition.deviations import DEVIATIONS
from tasks.superposition.presets import PRESETS
from tasks.superposition.toy_model import ToySpec

def _no_toy(adapter_cls, why: str) -> BenchError:
    return BenchError(f"{adapter_cls.name} ({why}) has no toy counterpart; run TASK=superposition with a model "
                      f"docs/superposition.md lists (dense, moe, switch, moex and their variants)")


def toy_form(adapter_cls) -> dict:
    """What the adapter's model becomes in the toy: MoE or dense, hidden form, router, aux loss. A model
    the toy cannot build is refused, never run as the nearest one it can."""
    if adapter_cls.base_model or getattr(adapter_cls, "initialise_from", None):
        raise _no_toy(adapter_cls, "it is built from another model's checkpoint")
    cfg = adapter_cls.model_config(GPTConfig(vocab_size=2, n_ctx=2, d_model=8, n_layers=1, n_heads=1, d_mlp=32))
    hidden = "relu" if cfg.act_fn == "relu" else "linear"
    if cfg.mlp == "dense":
        return {"moe": False, "hidden": hidden, "router": "learned", "aux_loss_coef": 0.0}
    if cfg.mlp != "moe":
        raise _no_toy(adapter_cls, f"{cfg.mlp} MLP")
    options = dict(cfg.mlp_options)
    if options.get("router_input", "raw") != "raw":  # the toy MoE has no running mean
        raise _no_toy(adapter_cls, f"router input {options['router_input']}")
    if options["router"] == "sparsity" and options["aux_loss_coef"]:  # the toy's sparsity router has no P_j
        raise _no_toy(adapter_cls, "sparsity router with a load-balancing loss")
    return {"moe": True, "hidden": hidden, "router": options["router"], "aux_loss_coef": options["aux_loss_coef"]}


def _mean(values):
    return statistics.fmean(values) if values else float("nan")


def headline(rows: list[dict], special: list[dict], n_features: int) -> dict:
    """Flat metrics: sweep means, the lowest density's features per dimension, the largest jump of
    features per dimension between neighbouring densities (a phase change shows as a jump), and the
    specialisation usage by gate initialisation."""
    lowest = min(r["density"] for r in rows)
    out = {"features_per_dim": _mean([r["features_per_dim"] for r in rows]),
           "features_per_dim_sparsest": _mean([r["features_per_dim"] for r in rows if r["density"] == lowest]),
           "monosemantic_fraction": _mean([r["monosemantic_features"] / n_features for r in rows]),
           "loss": _mean([r["loss"] for r in rows]),
           "mean_interference": _mean([r["mean_interference"] for r in rows])}
    jumps = []
    for key in {(r["config"], r["seed"]) for r in rows}:
        curve = sorted((r["density"], r["features_per_dim"]) for r in rows if (r["config"], r["seed"]) == key)
        jumps += [abs(b[1] - a[1]) for a, b in zip(curve, curve[1:])]
    out["features_per_dim_max_jump"] = max(jumps) if jumps else 0.0
    for config in sorted({r["config"] for r in rows}):
        out[f"features_per_dim_{config}"] = _mean([r["features_per_dim"] for r in rows if r["config"] == config])
        out[f"loss_{config}"] = _mean([r["loss"] for r in rows if r["config"] == config])
        out[f"monosemantic_fraction_{config}"] = _mean([r["monosemantic_features"] / n_features
                                                        for r in rows if r["config"] == config])
        on = [r["chosen_units_on"] for r in rows if r["config"] == config and r.get("chosen_units_on") is not None]
        if on:
            out[f"chosen_units_on_{config}"] = _mean(on)
    for init in sorted({s["gate_init"] for s in special}):
        group = [s for s in special if s["gate_init"] == init]
        out[f"specialisation_usage_{init}"] = _mean([s["usage_clamped"] for s in group])
        out[f"specialisation_baseline_{init}"] = _mean([s["usage_baseline"] for s in group])
    return out


class SuperpositionTask(Task):
    name = "superposition"
    builds_own_models = True
    Config = SuperpositionConfig
    presets = tuple(PRESETS)

    @staticmethod
    def result_variant(config: SuperpositionConfig, baseline: SuperpositionConfig | None = None) -> str | None:
        """A non-uniform importance is a different experiment, and a run without the specialisation
        experiment lacks its metrics: their results never replace the main sweep's."""
        parts = [] if config.importance_decay == 1 else [f"importance-{config.importance_decay:g}"]
        if not config.specialisation:
            parts.append("specialisation.False")
        return "_".join(parts) or None

    @staticmethod
    def run(adapter_cls, config: SuperpositionConfig, preset: str, seed: int, device: str) -> dict:
        from core.paths import RUNS
        from core.results import file_stem, result_dir
        from tasks.superposition.resume import ResumableRun
        from tasks.superposition.sweep import label, run_specialisation, run_sweep

        p = PRESETS[preset]
        form = toy_form(adapter_cls)
        generator = torch.Generator().manual_seed(seed)
        variant = SuperpositionTask.result_variant(config)
        in_progress = f"{adapter_cls.name}-{preset}-seed{seed}{'-' + variant if variant else ''}"
        # A killed run (the paper preset trains for hours) resumes: the stage in progress from runs/ on this
        # machine, the finished stages from beside the results, so a clone on another machine goes on too.
        run = ResumableRun(RUNS / "superposition" / in_progress,
                           {"preset": dataclasses.asdict(p), "config": dataclasses.asdict(config), "toy_form": form},
                           finished=result_dir("superposition", preset, variant) / "unfinished"
                           / f"{file_stem(adapter_cls.name)}-seed{seed}")
        toy = dict(hidden=form["hidden"], router=form["router"], aux_loss_coef=form["aux_loss_coef"])
        if form["moe"]:
            specs = [ToySpec(p.n_features, e, m, k, **toy) for e, m, k in p.expert_configs]
        else:
            specs = [ToySpec(p.n_features, 1, p.dense_width, 1, hidden=form["hidden"])]
        rows = []
        for spec in specs:
            rows += run.stage(f"sweep-{label(spec)}", generator, functools.partial(
                run_sweep, spec, p.densities, p.seeds, p.steps, p.batch, p.lr, config, generator))
            print(f"superposition {adapter_cls.name} {label(spec)}: features per dimension "
                  f"{_mean([r['features_per_dim'] for r in rows if r['config'] == label(spec)]):.3f}", flush=True)
        special = []
        if form["moe"] and config.specialisation:
            sp = p.specialisation
            spec = ToySpec(sp.n_features, sp.n_experts, sp.d_expert, sp.top_k, **toy)
            for init in (["xavier", "khot"] if form["router"] != "sparsity" else ["xavier"]):
                special += run.stage(f"specialisation-{init}", generator, functools.partial(
                    run_specialisation, spec, sp, init, p.lr, p.batch, config, generator))
        metrics = headline(rows, special, p.n_features)
        spent = run.time_spent()
        print(f"superposition {adapter_cls.name}: {len(run.time_by_stage)} stage(s) trained in "
              f"{spent['seconds'] / 60:.1f} min wall, {spent['cpu_seconds'] / 60:.1f} CPU-min", flush=True)
        details = {"toy_form": form, "preset": dataclasses.asdict(p), "sweep": rows, "specialisation": special,
                   "time": spent}
        deviations = DEVIATIONS + ([f"main sweep importance I_i = {config.importance_decay:g}^i (importance_decay); the "
                                    f"reference's main sweep is uniform"] if config.importance_decay != 1 else [])
        return {"metrics": metrics, "details": details, "deviations": deviations,
                "per_item": rows + special, "feature_kind": "toy-model feature directions (rows of W_e)",
                "on_written": run.finish}  # the resume state goes only once the result is on disk

    @staticmethod
    def figures(preset: str, variant: str | None = None) -> list:
        from tasks.superposition.figures import write_figures

        return write_figures(preset, variant)
