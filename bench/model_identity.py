"""Which model a result was scored on, and a check that the results naming one checkpoint agree.

A seed's checkpoint other than seed 0's is not committed. When it is lost with a machine and trained
again, the same recipe and seed give a different model (other float rounding over hours of training).
Results scored before and after then name the same checkpoint but describe two models, and a
comparison between them (a model against its own SAE, one block against another) would silently mix
them. Two marks tell the models apart:
- the sha256 of the parameters scored (`provenance.model_weights_sha256`, recorded by every run since
  it existed; a dictionary's result also records the model it was fitted over, in `features_from`);
- the training run, for results older than that: the wall-clock seconds, steps and tokens of the
  checkpoint's last training record (`provenance.trained`), which a second training run does not repeat.
Results disagree when either mark differs between them."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from core.results import NOT_RESULTS, UNFINISHED, task_dir


def parameters_sha256(model) -> str:
    """sha256 of a model's parameters and buffers, by name: the same weights give the same digest on
    any device or file format."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class Scored:
    """One result file and the marks of the model behind it (None where the result lacks one)."""
    file: str               # relative to the task's results folder
    created: str
    checkpoint: tuple       # (checkpoint, your data, your model's spec): one name, one model
    digest: str | None
    training_run: tuple | None


def scored(record, file: str) -> Scored | None:
    """The marks of a result's model; None for a file without a checkpoint (self-contained tasks)
    or with fields of the wrong type, which loading it for a summary reports."""
    provenance = record.get("provenance") if isinstance(record, dict) else None
    if not isinstance(provenance, dict) or not isinstance(provenance.get("checkpoint"), str):
        return None
    features_from = provenance.get("features_from")
    digest = provenance.get("model_weights_sha256") or (
        features_from.get("model_weights_sha256") if isinstance(features_from, dict) else None)
    trained = provenance.get("trained")
    run = tuple(trained.get(k) for k in ("seconds", "steps", "tokens")) if isinstance(trained, dict) else None
    key = (provenance["checkpoint"], json.dumps(provenance.get("data"), sort_keys=True), provenance.get("model_spec"))
    return Scored(file, str(provenance.get("created", "?"))[:16], key, digest if isinstance(digest, str) else None,
                  run if run and run[0] is not None else None)


def conflicts(task: str, preset: str) -> dict[tuple, list[list[Scored]]]:
    """Per checkpoint whose results (every block, site, dictionary and seed folder of `preset`)
    disagree: its results grouped by model, each group in the order it was scored, the group scored
    most recently last."""
    root = task_dir(task, preset)
    by_checkpoint: dict[tuple, list[Scored]] = {}
    for path in sorted(root.rglob("*.json")):
        if path.name.startswith(NOT_RESULTS) or UNFINISHED in path.relative_to(root).parts:
            continue
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # not ours to judge here: loading it for a summary reports what is wrong with it
        if not isinstance(record, dict) or record.get("preset") != preset:
            continue
        if s := scored(record, str(path.relative_to(root))):
            by_checkpoint.setdefault(s.checkpoint, []).append(s)
    found = {}
    for key, results in by_checkpoint.items():
        groups = _groups(results)
        if len(groups) > 1:
            found[key] = sorted((sorted(g, key=lambda s: (s.created, s.file)) for g in groups),
                                key=lambda g: g[-1].created)
    return found


def scored_before_retraining(record: dict, task: str) -> bool:
    """Whether a result (`record`) was scored on an earlier training of its checkpoint than the one on
    disk now: the checkpoint it names is the one in this checkpoints folder, its
    `provenance.trained` differs from that checkpoint's last training record, and the checkpoint was
    written after the result (it was trained again after it was lost, or trained on). False when that
    cannot be known: a result without the mark, or a checkpoint that is not whole on disk (scoring it
    again would train yet another model)."""
    import datetime

    from core import paths
    from core.errors import BenchError
    from models.checkpoint import read_meta

    provenance = record.get("provenance") if isinstance(record, dict) else None
    trained = provenance.get("trained") if isinstance(provenance, dict) else None
    if not isinstance(trained, dict) or trained.get("seconds") is None or not isinstance(
            provenance.get("checkpoint"), str):
        return False
    stem = paths.CHECKPOINTS / task / Path(provenance["checkpoint"]).name
    if provenance["checkpoint"] != str(stem.relative_to(stem.parents[2])):
        return False  # scored from another checkpoints folder (MOEXBENCH_CHECKPOINTS): not this one's to judge
    try:
        meta = read_meta(stem)
        written = stem.with_suffix(".json").stat().st_mtime
        scored = datetime.datetime.fromisoformat(str(provenance.get("created"))).timestamp()
    except (BenchError, OSError, ValueError):
        return False  # half a checkpoint (a trainer saving it, or damaged), or a result without its time
    history = meta.get("history") if meta else None
    if not isinstance(history, list) or not history or not isinstance(history[-1], dict) or written < scored:
        return False  # a checkpoint older than the result: the result may describe a later training
    last = history[-1]
    return (trained.get("seconds"), trained.get("steps"), trained.get("tokens")) != (
        last.get("seconds"), last.get("step"), last.get("tokens"))


def _groups(results: list[Scored]) -> list[list[Scored]]:
    """Results split by model: by parameter digest, a result without one joining the digest its
    training run was scored with elsewhere, else grouped by its training run. A result with neither
    mark cannot be placed and is left out."""
    digest_of_run = {s.training_run: s.digest for s in results if s.digest and s.training_run}
    by_model: dict = {}
    for s in results:
        model = s.digest or digest_of_run.get(s.training_run) or s.training_run
        if model is not None:
            by_model.setdefault(model, []).append(s)
    return list(by_model.values())


def _describe(groups: list[list[Scored]]) -> str:
    return "; then ".join(", ".join(f"{s.file} ({s.created})" for s in group) for group in groups)


def summary_lines(task: str, preset: str, folder: Path) -> list[str]:
    """A summary's warning: each checkpoint with a result in `folder` whose results disagree."""
    root = task_dir(task, preset)
    here = {str(p.relative_to(root)) for p in folder.glob("*.json")} | {
        str(p.relative_to(root)) for p in (folder / "seeds").glob("*.json")}
    return [f"The results over `{key[0]}` were scored on different weights (the checkpoint "
            f"was trained again or replaced): {_describe(groups)}. Score the earlier group again, with the "
            f"MODEL, SEED and settings each file records, before comparing them."
            for key, groups in conflicts(task, preset).items() if any(s.file in here for g in groups for s in g)]


def run_warning(task: str, preset: str, result: Path) -> str | None:
    """What a run that just wrote `result` warns of: earlier results over its checkpoint that were
    scored on other weights than the ones it scored (those on disk now)."""
    root = task_dir(task, preset)
    written = str(result.relative_to(root))
    for key, groups in conflicts(task, preset).items():
        stale = [g for g in groups if not any(s.file == written for s in g)]
        if len(stale) < len(groups):
            return (f"warning: results over {key[0]} were scored on other weights than this run's (the "
                    f"checkpoint was trained again or replaced): {_describe(stale)}. Score them again with "
                    f"the MODEL, SEED and settings each file records before comparing them with this one.")
    return None
