"""One bench run: load (or train) the model, evaluate it on the task, write the result and the
task's summary. The task never learns which model it is scoring."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import torch

from bench.model_identity import parameters_sha256, run_warning
from bench.model_store import build_random, load_or_train, model_depth
from bench.own_dictionary import variant_part as dictionary_variant
from bench.report import write_summary
from core.errors import BenchError
from core.own_data import identity, variant_part
from core.results import ensure_writable, refuse_other_measurement, result_path, write_result
from core.task_config import layer_from_end
from bench.sae_store import attach_features


def filed_config(task, config, adapter_cls, preset: str):
    """`config` as a run records and files it: a block counted from the start (layer=3 of 4) counted
    from the end (layer=-1), so one block has one name and one results folder."""
    if task.builds_own_models or not isinstance(getattr(config, "layer", None), int) or config.layer < 0:
        return config  # the model's depth is read only when needed (a nanoGPT file is loaded for it)
    return layer_from_end(config, model_depth(adapter_cls, task, preset))


def run_bench(adapter_cls, task, config, preset: str, seed: int, device: str) -> Path:
    if task.builds_own_models and getattr(adapter_cls, "spec", ""):
        # such a task trains toy models from one of our architectures; a file of yours names none
        raise BenchError(f"MODEL={adapter_cls.spec}: TASK={task.name} trains its own toy models from an architecture "
                         f"this harness defines, so a model from your files has nothing to give it; score it on "
                         f"TASK=chess or TASK=language")
    config = filed_config(task, config, adapter_cls, preset)
    target = result_path(task.name, adapter_cls.name, preset, seed, results_variant(task, config, adapter_cls))
    ensure_writable(target.parent, create=False)  # a run refused below leaves no empty folder
    refuse_other_measurement(target, config)
    if task.builds_own_models:
        return _run_self_contained(adapter_cls, task, config, preset, seed, device)
    task.prepare(config, preset)
    adapter, meta, stem = load_or_train(adapter_cls, task, preset, seed, device)
    scored_weights = parameters_sha256(adapter.model)  # as loaded, before anything could touch them
    attach_features(adapter, task, preset, seed, config, device, role="trained")
    random_adapter = None
    if getattr(config, "random_floor", False):
        # The floor: a random-init model of the same shape (seeded, so the floor is reproducible).
        random_adapter = adapter_cls(build_random(adapter_cls, task, preset, seed + 1_000).to(device).eval())
        attach_features(random_adapter, task, preset, seed, config, device, role="random")
    torch.manual_seed(seed)
    out = task.evaluate(adapter, random_adapter, config, preset, seed)
    history = meta.get("history") or [{}]
    provenance = {
        "checkpoint": str(stem.relative_to(stem.parents[2])) if len(stem.parents) > 2 else str(stem),
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


def settings_for(adapter_cls, task, overrides) -> object:
    """The task config a model is scored with: the task's defaults, then the model's own
    (`default_settings`, e.g. the attention SAE's site=attn), then the user's ARGS."""
    from core.task_config import apply_overrides

    return apply_overrides(task.Config(), [*adapter_cls.default_settings, *overrides])


def results_variant(task, config, adapter_cls) -> str | None:
    """A setting that makes a different experiment (another layer or site, the language LLM backend, a
    non-uniform toy importance), your own dictionary (bench/own_dictionary.py) or your own data
    (core/own_data.py) writes to its own results folder,
    never over the default run's. Settings are compared with the model's own defaults: those are its
    default run, in the main folder beside every other model's (the attention SAE at site=attn; the
    same SAE at site=mlp is the variant site.mlp)."""
    parts = [task.result_variant(config, settings_for(adapter_cls, task, [])),
             dictionary_variant(adapter_cls), variant_part(task)]
    return "_".join(p for p in parts if p) or None


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
