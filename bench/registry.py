"""Names -> "module:attribute". Imports are lazy, so naming one model never imports another's code."""

from __future__ import annotations

import importlib

from bench.errors import BenchError

MODELS = {
    "dense": "baselines.dense:DenseAdapter",
    "dense-relu": "baselines.dense:DenseReluAdapter",
    "dense-continued": "baselines.dense:DenseContinuedAdapter",
    "moe": "baselines.moe:MoEAdapter",
    "switch": "baselines.moe:SwitchAdapter",
    "switch-relu": "baselines.moe:SwitchReluAdapter",
    "moe-relu": "baselines.moe:MoEReluAdapter",
    "moex": "moex.adapter:MoEXAdapter",
    "moex-gelu": "moex.adapter:MoEXGeluAdapter",
    "moex-upcycled": "moex.adapter:MoEXUpcycledAdapter",
    "dense+sae": "baselines.sae:SAETopKAdapter",
    "dense+sae:standard": "baselines.sae:SAEStandardAdapter",
    "dense+sae:batchtopk": "baselines.sae:SAEBatchTopKAdapter",
    "dense+sae:jumprelu": "baselines.sae:SAEJumpReLUAdapter",
    "dense+sae:gated": "baselines.sae:SAEGatedAdapter",
}

# Other spellings of a model above; not run twice by MODEL=all.
ALIASES = {"dense+sae:topk": "dense+sae"}

TASKS = {
    "chess": "tasks.chess.task:ChessTask",
    "language": "tasks.language.task:LanguageTask",
    "superposition": "tasks.superposition.task:SuperpositionTask",
}

PRESETS = ("tiny", "tiny-moves", "tiny-gpt2", "cpu", "short", "short-w64", "short-w192", "gpu", "gpu-smoke", "paper")


def _load(kind: str, table: dict, name: str):
    if name not in table:
        raise BenchError(f"unknown {kind} {name!r}; choose one of {', '.join(table)}")
    module, attr = table[name].split(":")
    obj = getattr(importlib.import_module(module), attr)
    obj.name = name
    return obj


def model_adapter(name: str):
    """A registered model, or one from the user's files (`hf:<folder>`, `nanogpt:<ckpt.pt>`, `+sae:<folder>`)."""
    from bench.external_models import adapter_for, is_external

    if is_external(name):
        return adapter_for(name)
    return _load("model", MODELS, ALIASES.get(name, name))


def task(name: str):
    return _load("task", TASKS, name)


def check_preset(preset: str, task=None) -> str:
    """A preset name known here and, given a task, one that task defines (`short` is chess-only)."""
    if preset not in PRESETS:
        raise BenchError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    if task is not None and preset not in task.presets:
        raise BenchError(f"task {task.name!r} has no preset {preset!r}; choose one of {', '.join(task.presets)}")
    return preset
