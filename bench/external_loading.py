"""The model store's half of external models (adapters/external.py): load one from the user's files,
check that the task's preset speaks its tokens and fits its context, and build its random-init
floor (the same TransformerLens architecture, freshly initialised and seeded)."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import NamedTuple

import torch

from core.errors import BenchError
from models.checkpoint import file_sha256


def load_external_model(adapter_cls, device: str):
    if adapter_cls.kind == "hf":
        from models.hf_gpt2 import load_hf_gpt2

        return load_hf_gpt2(adapter_cls.source, device)
    from models.nanogpt_checkpoint import load_nanogpt

    _check_meta(adapter_cls)
    return load_nanogpt(adapter_cls.source, device)


def _check_meta(adapter_cls) -> None:
    """Karvonen's checkpoints ship a meta.pkl beside them: its characters must be the chess task's."""
    from models.nanogpt_checkpoint import check_meta_vocabulary, meta_vocabulary

    meta = adapter_cls.source.parent / "meta.pkl"
    if meta.exists():
        from tasks.chess.tokenizer import VOCAB

        try:
            meta_vocabulary(meta)
        except BenchError as e:
            raise BenchError(f"{e}; it is read only to check the vocabulary: give the meta.pkl nanoGPT's "
                             f"prepare.py wrote, or move it out of the folder") from None
        try:
            check_meta_vocabulary(meta, VOCAB)
        except BenchError as e:
            raise BenchError(f"{e}; a model of other token ids cannot be scored on these games; give one trained on "
                             f"the chess characters") from None


def load_external(adapter_cls, task, preset: str, device: str):
    """(adapter, meta, path), as the model store returns them for a checkpoint of ours."""
    model = load_external_model(adapter_cls, device)
    _check_fits(adapter_cls.spec, model.cfg.d_vocab, model.cfg.n_ctx, task, preset)
    source = adapter_cls.source
    meta = {"command": f"loaded from {adapter_cls.spec}", "trained_on": "outside this harness",
            "source_sha256": _weights_sha256(source)}
    return adapter_cls(model), meta, Path(source)


def _weights_sha256(source: Path) -> str:
    """sha256 of the checkpoint's weights: of the file itself (ckpt.pt, model.safetensors), or for a
    sharded save, of the lines `<shard name> <its sha256>` in name order."""
    from models.hf_gpt2 import weight_files

    files = [source] if source.is_file() else weight_files(source)
    if len(files) == 1:
        return file_sha256(files[0])
    return hashlib.sha256("".join(f"{f.name} {file_sha256(f)}\n" for f in files).encode()).hexdigest()


def random_external(adapter_cls, seed: int):
    from transformer_lens import HookedTransformer

    shape = load_external_model(adapter_cls, "cpu").cfg
    torch.manual_seed(seed)
    return HookedTransformer(shape, move_to_device=False).eval()


class Shape(NamedTuple):
    n_layers: int
    vocab: int
    n_ctx: int
    d_model: int
    d_mlp: int


def external_shape(adapter_cls) -> Shape:
    """Blocks, vocabulary and context of a model from the user's files, from its config (no weights
    built); a nanoGPT file is read once per version of it however often this is asked."""
    path = adapter_cls.source / "config.json" if adapter_cls.kind == "hf" else adapter_cls.source
    try:
        stat = path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        stamp = None  # missing: the reader names it
    return _read_shape(adapter_cls.kind, adapter_cls.source, stamp)


@functools.lru_cache(maxsize=8)
def _read_shape(kind: str, source: Path, stamp) -> Shape:
    if kind == "hf":
        from models.hf_gpt2 import read_gpt2_config

        config = read_gpt2_config(source)
        d_model = int(config["n_embd"])
        return Shape(int(config["n_layer"]), int(config["vocab_size"]), int(config["n_positions"]), d_model,
                     int(config.get("n_inner") or 4 * d_model))
    from models.nanogpt_checkpoint import read_checkpoint

    args = read_checkpoint(source)[1]
    d_model = int(args["n_embd"])  # nanoGPT's MLP is always 4 x n_embd wide
    return Shape(int(args["n_layer"]), int(args["vocab_size"]), int(args["block_size"]), d_model, 4 * d_model)


def check_fits_before_loading(adapter_cls, task, preset: str) -> None:
    """The vocabulary and context checks of loading, from the model's config alone: run before any work."""
    shape = external_shape(adapter_cls)
    if adapter_cls.kind == "nanogpt":
        _check_meta(adapter_cls)
    _check_fits(adapter_cls.spec, shape.vocab, shape.n_ctx, task, preset)


def _check_fits(spec: str, vocab: int, n_ctx: int, task, preset: str) -> None:
    dense = task.dense_config(preset)
    if vocab != dense.vocab_size:
        fitting = _fitting_presets(task, vocab)
        elsewhere = _fitting_elsewhere(task, vocab, n_ctx)
        raise BenchError(f"{spec} has a {vocab}-token vocabulary but {task.name} preset {preset} reads "
                         f"{dense.vocab_size} tokens; choose a preset with the model's tokenizer "
                         f"({', '.join(fitting) or f'none of the {task.name} presets'})"
                         + (f", or score it on another task: {'; '.join(elsewhere)}" if elsewhere else ""))
    if n_ctx < dense.n_ctx:
        fitting = _fitting_presets(task, vocab, max_ctx=n_ctx)
        raise BenchError(f"{spec} reads at most {n_ctx} tokens but {task.name} preset {preset} feeds "
                         f"{dense.n_ctx}; " + (f"choose a preset with a shorter context ({', '.join(fitting)})"
                                              if fitting else f"no {task.name} preset with its tokenizer feeds "
                                              f"{n_ctx} tokens or fewer, so it cannot be scored on "
                                              f"{task.name}: score a model with a longer context"))


def _fitting_elsewhere(task, vocab: int, n_ctx: int) -> list[str]:
    """`TASK=<name> PRESET=<presets>` for each other task that scores outside models and has presets
    reading a `vocab`-token vocabulary and feeding at most `n_ctx` tokens."""
    from bench import registry

    found = []
    for name in registry.TASKS:
        other = registry.task(name)
        if name == task.name or other.builds_own_models:
            continue
        fitting = _fitting_presets(other, vocab, max_ctx=n_ctx)
        if fitting:
            found.append(f"TASK={name} PRESET={'|'.join(fitting)}")
    return found


def _fitting_presets(task, vocab: int, max_ctx: int | None = None) -> list[str]:
    """The task's presets that read a `vocab`-token vocabulary (and feed at most `max_ctx` tokens)."""
    fitting = []
    for preset in task.presets:
        try:
            dense = task.dense_config(preset)
        except BenchError:  # a preset whose tokenizer files are absent here
            continue
        if dense.vocab_size == vocab and (max_ctx is None or dense.n_ctx <= max_ctx):
            fitting.append(preset)
    return fitting
