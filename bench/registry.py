"""Names -> "module:attribute". Imports are lazy, so naming one model never imports another's code."""

from __future__ import annotations

import importlib

from core.errors import BenchError

MODELS = {
    "dense": "adapters.dense:DenseAdapter",
    "dense-relu": "adapters.dense:DenseReluAdapter",
    "dense-continued": "adapters.dense:DenseContinuedAdapter",
    "dense-topk": "adapters.dense_topk:DenseTopKAdapter",
    "moe": "adapters.moe:MoEAdapter",
    "switch": "adapters.moe:SwitchAdapter",
    "switch-relu": "adapters.moe:SwitchReluAdapter",
    "moe-relu": "adapters.moe:MoEReluAdapter",
    "moex": "adapters.moe:MoEXAdapter",
    "moex-gelu": "adapters.moe:MoEXGeluAdapter",
    "moex-balanced": "adapters.moe:MoEXBalancedAdapter",
    "moex-centred": "adapters.moe:MoEXCentredAdapter",
    "moex-upcycled": "adapters.upcycling:MoEXUpcycledAdapter",
    "dense+sae": "adapters.sae:SAETopKAdapter",
    "dense+sae:standard": "adapters.sae:SAEStandardAdapter",
    "dense+sae:batchtopk": "adapters.sae:SAEBatchTopKAdapter",
    "dense+sae:jumprelu": "adapters.sae:SAEJumpReLUAdapter",
    "dense+sae:gated": "adapters.sae:SAEGatedAdapter",
    "dense+attn-sae": "adapters.sae:AttnSAEAdapter",
    "dense+transcoder": "adapters.transcoder:TranscoderAdapter",
    "dense+snmf": "adapters.snmf:SNMFAdapter",
}

# Other spellings of a model above; not run twice by MODEL=all.
ALIASES = {"dense+sae:topk": "dense+sae"}

TASKS = {
    "chess": "tasks.chess.task:ChessTask",
    "language": "tasks.language.task:LanguageTask",
    "superposition": "tasks.superposition.task:SuperpositionTask",
}

PRESETS = ("tiny", "tiny-moves", "tiny-gpt2", "cpu", "short", "short-w128", "short-w384", "gpu", "gpu-smoke", "paper")


def _load(kind: str, table: dict, name: str):
    if name not in table:
        raise BenchError(f"unknown {kind} {name!r}; choose one of {', '.join(table)}")
    module, attr = table[name].split(":")
    obj = getattr(importlib.import_module(module), attr)
    obj.name = name
    return obj


def model_adapter(name: str):
    """A registered model, or one from the user's files (`hf:<folder>`, `nanogpt:<ckpt.pt>`, `+sae:<folder>`);
    a dictionary model reading your own dictionary knows it (bench/own_dictionary.py)."""
    from adapters.external import adapter_for
    from adapters.external_names import is_external
    from bench.own_dictionary import with_own_dictionary

    if is_external(name):
        return adapter_for(name)
    check_model_name(name)
    return with_own_dictionary(_load("model", MODELS, ALIASES.get(name, name)), name)


def check_model_name(name: str) -> None:
    """A registered model, or the form of one from your files and that its paths are there, checked
    without importing any model code (what the files hold is checked when the model is loaded)."""
    from adapters.external_names import is_external, parse

    if is_external(name):
        parse(name)  # its form, and that its paths are there
    elif ALIASES.get(name, name) not in MODELS:
        raise BenchError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}, or a model of your own: "
                         f"hf:<folder>, nanogpt:<ckpt.pt>, either optionally +sae:<SAELens folder>")


def task(name: str):
    return _load("task", TASKS, name)


def check_preset(preset: str, task=None) -> str:
    """A preset name known here and, given a task, one that task defines (`short` is chess-only)."""
    if preset not in PRESETS:
        raise BenchError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    if task is not None and preset not in task.presets:
        raise BenchError(f"task {task.name!r} has no preset {preset!r}; choose one of {', '.join(task.presets)}")
    return preset
