"""One bench run: load (or train) the model, evaluate it on the task, write the result and the
task's summary. The task never learns which model it is scoring."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import torch

from bench.model_identity import parameters_sha256, run_warning
from bench.model_store import build_random, load_or_train
from bench.report import write_summary
from bench.run_target import checked_target, results_variant
from core.own_data import identity
from core.results import write_result
from bench.sae_store import attach_features


# The random-init floor's model is built with the run's seed plus this, so it is never the trained model's init.
FLOOR_SEED_OFFSET = 1_000


def checkpoint_named(stem: Path) -> str:
    """A checkpoint of ours as `<checkpoints folder>/<task>/<stem>`, the same wherever the repository
    lies (bench/model_identity.py reads it so); a model of yours by its whole path, as named."""
    from core import paths

    return str(stem.relative_to(stem.parents[2])) if stem.is_relative_to(paths.CHECKPOINTS) else str(stem)


def run_bench(adapter_cls, task, config, preset: str, seed: int, device: str) -> Path:
    config, _ = checked_target(adapter_cls, task, config, preset, seed)
    if task.builds_own_models:
        return _run_self_contained(adapter_cls, task, config, preset, seed, device)
    task.prepare(config, preset)
    adapter, meta, stem = load_or_train(adapter_cls, task, preset, seed, device)
    scored_weights = parameters_sha256(adapter.model)  # as loaded, before anything could touch them
    attach_features(adapter, task, preset, seed, config, device, role="trained")
    random_adapter = None
    if getattr(config, "random_floor", False):
        # The floor: a random-init model of the same shape (seeded, so the floor is reproducible).
        random_model = build_random(adapter_cls, task, preset, seed + FLOOR_SEED_OFFSET)
        # Built on the CPU; TransformerLens's .to announces itself on stdout even there.
        random_adapter = adapter_cls((random_model if device == "cpu" else random_model.to(device)).eval())
        attach_features(random_adapter, task, preset, seed, config, device, role="random")
    torch.manual_seed(seed)
    out = task.evaluate(adapter, random_adapter, config, preset, seed)
    history = meta.get("history") or [{}]
    provenance = {
        "checkpoint": checkpoint_named(stem),
        "trained": {"steps": history[-1].get("step"), "tokens": history[-1].get("tokens"),
                    "seconds": history[-1].get("seconds"), "command": meta.get("command"),
                    # checkpoints from before this field were all trained on this project's CPU machine
                    "device": meta.get("trained_on", "cpu")},
        "deviations": out["deviations"],
        "feature_kind": adapter.feature_kind,
        # the weights scored, so that results naming one checkpoint can be checked to describe one model
        "model_weights_sha256": scored_weights,
        # a model from the user's files is found again by its spec, not by the plain name it is written under
        **({"model_spec": adapter_cls.spec} if getattr(adapter_cls, "spec", "") else {}),
        # your own dictionary: the variable that names it (bench/own_dictionary.py)
        **({"own_dictionary": own} if (own := getattr(adapter_cls, "own_dictionary", None)) else {}),
        **({"features_from": adapter.sae_source} if getattr(adapter, "sae_source", None) else {}),
        # the floor's model seed and, for a dictionary model, the dictionary fitted on it (kept under .cache/)
        **({"random_init": _floor_provenance(random_adapter, seed)} if random_adapter is not None else {}),
        **({"data": data} if (data := identity(task)) else {}),  # your own data: which (core/own_data.py)
    }
    variant = results_variant(task, config, adapter_cls)
    path = write_result(task.name, adapter_cls.name, preset, seed, out["metrics"], dataclasses.asdict(config),
                        out["details"], provenance, out.get("per_item"), variant)
    out.get("on_written", lambda: None)()
    _report(task, preset, seed, variant)
    if warning := run_warning(task.name, preset, path):
        print(warning, file=sys.stderr)
    return path


def _floor_provenance(random_adapter, seed: int) -> dict:
    source = getattr(random_adapter, "sae_source", None)
    return {"model_seed": seed + FLOOR_SEED_OFFSET, **({"features_from": source} if source else {})}


def _report(task, preset: str, seed: int, variant: str | None = None) -> None:
    """The task's summary after every seed (its means and spreads count them all), and its own
    figures or pages, drawn from seed 0, when it draws any."""
    write_summary(task.name, preset, variant)
    if seed == 0:
        task.figures(preset, variant)


def _run_self_contained(adapter_cls, task, config, preset: str, seed: int, device: str) -> Path:
    torch.manual_seed(seed)
    out = task.run(adapter_cls, config, preset, seed, device)
    provenance = {"deviations": out["deviations"], "feature_kind": out.get("feature_kind", ""),
                  "command": f"make bench MODEL={adapter_cls.name} TASK={task.name} PRESET={preset} SEED={seed}"}
    variant = results_variant(task, config, adapter_cls)
    path = write_result(task.name, adapter_cls.name, preset, seed, out["metrics"], dataclasses.asdict(config),
                        out["details"], provenance, out.get("per_item"), variant)
    out.get("on_written", lambda: None)()
    _report(task, preset, seed, variant)
    return path
