"""Where checkpoints live, and the one path that loads a model or trains it when it is absent.

    checkpoints/<task>/<model>-<preset>.safetensors|.json          seed 0: the committed one
    checkpoints/<task>/<model>-<preset>-seed<s>.safetensors|.json  other seeds (not committed)
    runs/<task>/<model>-<preset>-seed<s>/state.*                   resume state (not committed)
"""

from __future__ import annotations

import os
import platform
from contextlib import contextmanager, suppress
from pathlib import Path

import torch

from core.errors import BenchError
from core.locks import exclusive, lock_holder
from core.own_data import identity, refuse_training_into_committed, run_suffix
from core.paths import RUNS, checkpoint_stem
from core.results import ensure_writable
from models.checkpoint import load_model, read_meta, weights_digest
from models.gpt import GPT
from models.train import train


def training_allowed() -> bool:
    """False under MOEXBENCH_NO_TRAIN=1 (the regression gate): a missing model or SAE is then an
    error, never a silent hour of training."""
    return os.environ.get("MOEXBENCH_NO_TRAIN") != "1"


def run_dir(task: str, model: str, preset: str, seed: int) -> Path:
    return RUNS / task / f"{model.replace('+', '_')}-{preset}-seed{seed}"


def trainer_pid(task: str, model: str, preset: str, seed: int) -> str | None:
    """The pid of the process holding this checkpoint's training lock now, None when none does (on
    the committed data: a run on your own data trains in a folder of its own)."""
    return lock_holder(run_dir(task, model, preset, seed) / "train.lock")


def build_random(adapter_cls, task, preset: str, seed: int) -> GPT:
    if adapter_cls.base_model:
        from bench import registry

        adapter_cls = registry.model_adapter(adapter_cls.base_model)
    if getattr(adapter_cls, "external", False):  # a model from the user's files: its own architecture
        from bench.external_loading import random_external

        return random_external(adapter_cls, seed)
    torch.manual_seed(seed)
    return GPT(adapter_cls.model_config(task.dense_config(preset)))


def _runs(task, adapter_cls, preset: str, seed: int) -> Path:
    """The training run's folder; on your own data one of its own (core/own_data.py)."""
    base = run_dir(task.name, adapter_cls.name, preset, seed)
    return base.with_name(base.name + run_suffix(task))


def describe_device(device: str) -> str:
    """Where a checkpoint was trained, for its provenance: the same recipe gives other numbers on
    another device (float order, kernels), so a result says which one made its weights."""
    if device.startswith("cuda"):
        return f"{device} ({torch.cuda.get_device_name(torch.device(device))}), torch {torch.__version__}"
    return f"{device} ({platform.machine()}, {torch.get_num_threads()} thread(s)), torch {torch.__version__}"


def train_model(adapter_cls, task, preset: str, seed: int, device: str, progress: bool = True,
                only_if_missing: bool = False) -> Path:
    """Trains (or resumes) and returns the checkpoint stem. One process at a time per checkpoint: a
    second one waits for the first, then (`only_if_missing`) loads what it wrote instead of training.
    Without `only_if_missing`, a finished checkpoint with no unfinished run is refused
    (refuse_training_over)."""
    if getattr(adapter_cls, "external", False):
        raise BenchError(f"{adapter_cls.spec} is a model from your files: it is scored as it is, never trained here; "
                         f"use `make bench`")
    stem = checkpoint_stem(task.name, adapter_cls.name, preset, seed)
    if only_if_missing:  # loads a checkpoint that is there, so it never trains over one
        refuse_training_into_committed(task, stem, f"{adapter_cls.name} ({preset}, seed {seed})")
    else:  # asked to train (`make train`, the GPU script): never over a finished checkpoint
        refuse_training_over(adapter_cls, task, preset, seed)
    runs = _runs(task, adapter_cls, preset, seed)
    with _nothing_left_if_refused(stem.parent, runs):
        ensure_writable(stem.parent)
        ensure_writable(runs)
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # torchrun's ranks train together: no lock among them
            return _train(adapter_cls, task, preset, seed, device, progress, stem)
        with exclusive(runs / "train.lock", f"{stem.name} is being trained by another process"):
            if only_if_missing and read_meta(stem) is not None:
                print(f"{stem.name}: trained meanwhile by the other process; loading it")
                return stem
            return _train(adapter_cls, task, preset, seed, device, progress, stem)


@contextmanager
def _nothing_left_if_refused(*folders: Path):
    """A training refused before it wrote anything (its data, the model it starts from) leaves no empty
    folder it made for that (each one missing beforehand, up to the first that was there): no empty
    checkpoints folder in particular. The run's folder keeps its `train.lock`, as a run that saved state
    keeps its folder: another process may be waiting on that lock, and one unlinked under it would let
    a third take a new one and train the same checkpoint beside it."""
    made = []
    for folder in folders:
        made += [f for f in (folder, *folder.parents) if not (f.exists() or f.is_symlink())]
    try:
        yield
    except BenchError:
        for folder in sorted(set(made), key=lambda f: len(f.parts), reverse=True):  # the deepest first
            with suppress(OSError):  # not empty, or made meanwhile by another run: it stays
                if not folder.is_symlink():
                    folder.rmdir()
        raise


def _train(adapter_cls, task, preset: str, seed: int, device: str, progress: bool, stem: Path) -> Path:
    model = build_random(adapter_cls, task, preset, seed).to(device)
    data = task.training_data(preset, seed)
    fingerprint = dict(data.fingerprint)
    recipe = task.train_config(preset, seed)
    on_device = "" if device == "cpu" else f" DEVICE={device}"
    meta = {"task": task.name, "model": adapter_cls.name, "preset": preset, "seed": seed,
            "command": f"make train MODEL={adapter_cls.name} TASK={task.name} PRESET={preset} SEED={seed}{on_device}",
            "trained_on": describe_device(device)}
    if (data_identity := identity(task)) is not None:  # your own data: loaded again only with it
        meta["data"] = data_identity
    source = getattr(adapter_cls, "initialise_from", None)
    if source:  # continued training / upcycling: start from another model's checkpoint
        from bench import registry

        source_adapter, _, source_stem = load_or_train(registry.model_adapter(source), task, preset, seed, device)
        with torch.no_grad():
            adapter_cls.initialise(model, source_adapter.model)
        digest = weights_digest(source_stem)
        fingerprint["initialised_from"] = meta["initialised_from"] = f"{source_stem.name} sha256 {digest}"
    on_eval = task.eval_callback(preset)
    untagged = task.untagged_format(preset)  # a task leaves its default format out of the fingerprint
    train(model, recipe, data.batch_fn, data.val_tokens.to(device), _runs(task, adapter_cls, preset, seed),
          stem, fingerprint, meta, on_eval=on_eval, progress=progress,
          unrecorded={"format": untagged} if untagged is not None else None)
    if int(os.environ.get("RANK", "0")) == 0:
        task.after_training(adapter_cls.name, preset, seed, read_meta(stem))
    return stem


def refuse_training_over(adapter_cls, task, preset: str, seed: int) -> None:
    """Training on purpose (`make train`, the GPU script) on a finished checkpoint with no unfinished run
    to resume (a fresh clone has none) would train a new model and write it over the old one, under the
    results scored from it: one line instead. A run whose saved state is short of the recipe's steps
    resumes as before."""
    stem = checkpoint_stem(task.name, adapter_cls.name, preset, seed)
    # On your own data the committed checkpoints are never the target: that message, not "delete it".
    refuse_training_into_committed(task, stem, f"{adapter_cls.name} ({preset}, seed {seed})")
    if not checkpoint_complete(stem):
        return
    _check_format(task, preset, stem)  # a checkpoint of the other format: the fix below would not score it
    run = _runs(task, adapter_cls, preset, seed)
    if (run / "state.safetensors").exists():  # what train() resumes from; state.json alone is not enough
        from models.train import read_state_meta

        if read_state_meta(run)["step"] < task.train_config(preset, seed).steps:
            return
    raise BenchError(f"{stem}.safetensors is already trained; `make bench MODEL={adapter_cls.name} TASK={task.name} "
                     f"PRESET={preset} SEED={seed}` scores it. To train it again, delete {stem.name}.json and its "
                     f"weights ({stem.name}.safetensors and any {stem.name}.<n>.safetensors parts) first, or set "
                     f"MOEXBENCH_CHECKPOINTS=<another folder>")


def checkpoint_complete(stem: Path) -> bool:
    """Whether both files of the checkpoint are on disk and readable. Weights without their JSON may
    be a trainer saving right now (weights first, JSON last), so that case is settled under the
    training lock, where read_meta refuses a half checkpoint that nobody is writing."""
    try:
        return read_meta(stem) is not None
    except BenchError:
        return False


def _check_format(task, preset: str, stem: Path) -> None:
    """The format check the command line made before any work (bench/run_target.py), again for the
    callers that come here directly (make train, the GPU script, the grid)."""
    from bench.run_target import refuse_other_format

    refuse_other_format(task, preset, stem, read_meta(stem))


def _check_data(task, stem: Path) -> None:
    """A checkpoint trained on your own data is read only with that data (the same folder and bytes):
    under another data set, or the committed one, the same name would silently stand for another
    model. A checkpoint trained on the committed data can score any data: that is what your own data
    is for."""
    trained_on = read_meta(stem).get("data")
    if trained_on is None:
        return
    now = identity(task)
    if trained_on != now:
        where = f"your data {now}" if now else "the committed data"
        raise BenchError(f"checkpoint {stem}.json was trained on {trained_on}, and this run reads {where}; "
                         f"set the task's MOEXBENCH_*_DATA back to that folder, or point MOEXBENCH_CHECKPOINTS "
                         f"at another folder")


def load_or_train(adapter_cls, task, preset: str, seed: int, device: str, train_if_missing: bool = True):
    """The adapter over the checkpoint for (task, model, preset, seed), training it first if absent."""
    if adapter_cls.base_model:  # features over another model's checkpoint (an SAE over dense)
        from bench import registry

        base, meta, stem = load_or_train(registry.model_adapter(adapter_cls.base_model), task, preset, seed,
                                         device, train_if_missing)
        return adapter_cls(base.model), meta, stem
    if getattr(adapter_cls, "external", False):  # a model from the user's files: loaded, never trained
        from bench.external_loading import load_external

        return load_external(adapter_cls, task, preset, device)
    stem = checkpoint_stem(task.name, adapter_cls.name, preset, seed)
    if not checkpoint_complete(stem):
        if not train_if_missing or not training_allowed():
            read_meta(stem)  # half a checkpoint is refused as such
            raise BenchError(f"no checkpoint at {stem}.safetensors; run `make train MODEL={adapter_cls.name} "
                             f"TASK={task.name} PRESET={preset} SEED={seed}`")
        print(f"no checkpoint at {stem}.safetensors: training it now (PRESET={preset})")
        train_model(adapter_cls, task, preset, seed, device, only_if_missing=True)
    _check_format(task, preset, stem)
    _check_data(task, stem)
    expected = adapter_cls.model_config(task.dense_config(preset))
    model, meta = load_model(stem, expected)
    model.to(device).eval()
    return adapter_cls(model), meta, stem
