"""`moexbench export --format saebench`: a task's results as SAEBench's eval-output JSON (docs/export.md).

Per model of the task, preset and variant (seed 0; other seeds' results, in seeds/, are not exported),
under `<out>/<eval_type_id>/`, files named as SAEBench names them (`<release>_<id>_eval_results.json`,
here `moexbench_<task>_<preset>_<model>`):

- `core/`: SAEBench's core metrics, computed now from the checkpoint (and SAE) the result was scored
  on (bench/core_metrics.py) on the same validation rows as the result's fidelity metrics; a result
  whose clean or spliced cross-entropy the checkpoint no longer reproduces is refused as stale;
- `autointerp/` (language): our detection score as `autointerp_score`, read from the result and its
  per-feature records, with our protocol and backend named in `eval_config`;
- `moexbench_chess/` (chess): the chess metrics in the same envelope under our own eval_type_id,
  since SAEBench has no eval type for them.

Everything is computed and checked before the first file is written; each file is written atomically.
The export never trains: a missing checkpoint or SAE is an error naming the command that makes it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
from pathlib import Path

from core.errors import BenchError
from core.results import ensure_writable
from core.threads import add_threads_argument

FORMATS = ("saebench",)
TASKS = ("language", "chess")  # the tasks whose results come from trained models with features at a site
STALE_TOLERANCE = 1e-3  # nats: float order (threads, batch shapes) moves CE by ~1e-6; new weights far more


def register(sub) -> None:
    """The `export` subcommand of bench/cli.py."""
    p = sub.add_parser("export", help="write a task's results in another tool's format (saebench: SAEBench's "
                                      "eval-output JSON, docs/export.md)")
    p.add_argument("--format", required=True, help=f"one of: {', '.join(FORMATS)}")
    p.add_argument("--task", default="language", help=f"one of: {', '.join(TASKS)}")
    p.add_argument("--preset", default="cpu")
    p.add_argument("--variant", default=None, help="a variant folder of the task's results (e.g. llm)")
    p.add_argument("--out", default=None, help="output folder (default: <the results folder>/saebench)")
    p.add_argument("--device", default="cpu")
    add_threads_argument(p)
    p.add_argument("--quiet", action="store_true", help="no progress bars (as for bench and train)")


def run(args, setup) -> list[Path]:
    """Checks the input, computes every file, then writes them; `setup(args)` sets threads and device."""
    from bench import registry
    from core.results import atomic_write_text, load_results, result_dir

    if args.format not in FORMATS:
        raise BenchError(f"export format {args.format!r} unknown; choose one of {', '.join(FORMATS)}")
    task = registry.task(args.task)
    registry.check_preset(args.preset, task)
    if task.name not in TASKS:
        raise BenchError(f"task {task.name!r} has no SAEBench export (it scores toy models it builds itself); "
                         f"export one of {', '.join(TASKS)}")
    folder = result_dir(task.name, args.preset, args.variant)
    records = load_results(folder) if folder.is_dir() else []
    if not records:
        raise BenchError(f"no results in {folder} for task {task.name}, preset {args.preset}; run "
                         f"`make bench TASK={task.name} PRESET={args.preset} MODEL=<model>` first, then export")
    for record in records:
        if (record["task"], record["preset"]) != (task.name, args.preset):
            raise BenchError(f"{record['_path']} holds task {record['task']!r}, preset {record['preset']!r}, not "
                             f"{task.name!r}, {args.preset!r}; move it to its own results folder")
    out = Path(args.out) if args.out else folder / "saebench"
    ensure_writable(out, create=False, fix="choose another --out")  # before any work, creating nothing
    setup(args)
    tokens = task.validation_tokens(args.preset, 0).to(args.device)
    files = {}
    with _never_train():
        for record in records:
            files.update(export_record(record, task, args.preset, args.variant, tokens, args.device))
    for relative, doc in files.items():
        atomic_write_text(out / relative, json.dumps(doc, indent=2, allow_nan=False) + "\n")
    print("\n".join(_found(files)))
    print(f"wrote {len(files)} file(s) under {out}")
    return [out / relative for relative in files]


# What each core file says, one line per scored model: the numbers a reader compares first.
_HEADLINE = (("model_performance_preservation", "ce_loss_score"), ("model_behavior_preservation", "kl_div_score"),
             ("reconstruction_quality", "explained_variance"), ("sparsity", "l0"))


def _found(files: dict[str, dict]) -> list[str]:
    lines = []
    for relative, doc in files.items():
        if relative.startswith("core/"):
            metrics = doc["eval_result_metrics"]
            said = [f"{name} {metrics[group][name]:.3f}" for group, name in _HEADLINE
                    if isinstance(metrics.get(group, {}).get(name), (int, float))]
            lines.append(f"{relative.removeprefix('core/').removesuffix('_eval_results.json')}: {', '.join(said)}")
    return lines


def export_record(record: dict, task, preset: str, variant: str | None, tokens, device: str) -> dict[str, dict]:
    """{relative path: document} of one result: its core file and its task's file."""
    from bench import saebench_docs as docs
    from bench.core_metrics import core_metrics

    adapter, meta, config = _load(record, task, preset, device)
    batch = record["config"].get("batch_size", 32)
    core = core_metrics(adapter, tokens, config.layer, config.site, batch)
    _check_same_weights(record, core["metrics"]["model_performance_preservation"])
    ids, about = docs.identity(record, adapter, config, tokens)
    name = f"{ids['sae_lens_release_id']}_{_plain(record['model'])}_eval_results.json"
    out = {f"core/{name}": docs.core_doc(record, core, ids, about, adapter, meta, tokens, batch, config)}
    if task.name == "language":
        out[f"autointerp/{name}"] = docs.autointerp_doc(record, _rows(record, required=True), ids, about, variant)
    else:
        out[f"moexbench_{task.name}/{name}"] = docs.own_doc(record, _rows(record), ids, about, variant)
    for path, doc in out.items():
        docs.check_finite(doc["eval_result_metrics"], f"{record['_path']} -> {path}")
        out[path] = docs.json_safe(doc)
    return out


def _load(record: dict, task, preset: str, device: str):
    """The adapter the result was scored with, at its layer and site, from the model store."""
    from bench import registry
    from bench.model_store import load_or_train
    from bench.sae_store import attach_features

    unknown = sorted(set(record["config"]) - {f.name for f in dataclasses.fields(task.Config)})
    if unknown:
        raise BenchError(f"{record['_path']}: config field(s) {', '.join(unknown)} are not settings of the "
                         f"{task.name} task any more; rerun the bench that wrote it")
    try:
        config = task.Config(**record["config"])
    except (TypeError, ValueError) as e:
        raise BenchError(f"{record['_path']}: its config is not valid now ({e}); rerun the bench that "
                         f"wrote it") from None
    name = record.get("provenance", {}).get("model_spec") or record["model"]  # a model from the user's files
    try:
        adapter_cls = registry.model_adapter(name)
    except BenchError as e:
        if name == record["model"]:
            raise
        raise BenchError(f"{record['_path']} was scored on {name}, which cannot be loaded now: {e}") from None
    if adapter_cls.name != record["model"]:
        raise BenchError(f"{record['_path']} was written under an older name of {name} (now {adapter_cls.name}); "
                         f"rerun `make bench MODEL={name} TASK={task.name} PRESET={preset}` and delete it")
    _same_dictionary(record, adapter_cls)
    adapter, meta, _ = load_or_train(adapter_cls, task, preset, 0, device, train_if_missing=False)
    attach_features(adapter, task, preset, 0, config, device, role="trained")
    return adapter, meta, config


def _same_dictionary(record: dict, adapter_cls) -> None:
    """A result scored with your own dictionary is exported with that dictionary, and one scored with
    ours with ours: the variable naming it must be as it was (bench/own_dictionary.py)."""
    from bench.own_dictionary import normalised

    then = record.get("provenance", {}).get("own_dictionary")
    now = getattr(adapter_cls, "own_dictionary", None)
    if then == now or (then and now and normalised(then) == now):  # a folder recorded as typed, before resolving
        return
    if then:
        raise BenchError(f"{record['_path']} was scored with your dictionary {then['variable']}={then['value']}; "
                         f"set it again to export it")
    raise BenchError(f"{record['_path']} was scored with the harness's own dictionary, and {now['variable']} is "
                     f"set here; unset it to export this folder")


def _rows(record: dict, required: bool = False) -> list[dict]:
    """The result's per-item records (the .jsonl beside it)."""
    path = Path(record["_path"]).with_suffix(".jsonl")
    if not path.exists():
        if not required:
            return []
        raise BenchError(f"{path} is missing: the export reads the per-feature records beside {record['_path']}; "
                         f"rerun `make bench MODEL={record['model']} TASK={record['task']} PRESET={record['preset']}`")
    try:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BenchError(f"{path} is not valid JSON lines ({e}); rerun the bench that wrote it") from None


@contextlib.contextmanager
def _never_train():
    """An absent or stale SAE is an error here, never a training run (bench/sae_store.py asks
    bench.model_store.training_allowed, which reads this)."""
    before = os.environ.get("MOEXBENCH_NO_TRAIN")
    os.environ["MOEXBENCH_NO_TRAIN"] = "1"
    try:
        yield
    finally:
        if before is None:
            del os.environ["MOEXBENCH_NO_TRAIN"]
        else:
            os.environ["MOEXBENCH_NO_TRAIN"] = before


def _check_same_weights(record: dict, ce: dict) -> None:
    """The core metrics come from today's checkpoint, the result's numbers from the one it was scored on:
    they must be the same weights."""
    for ours, theirs in (("ce_loss_without_sae", "ce_clean"), ("ce_loss_with_sae", "ce_splice")):
        then = record["metrics"].get(theirs)
        if then is not None and abs(ce[ours] - then) > STALE_TOLERANCE:
            raise BenchError(f"{record['_path']}: {theirs} is {then:.6f} but its checkpoint now gives {ce[ours]:.6f}: "
                             f"the result was scored on other weights; rerun `make bench MODEL={record['model']} "
                             f"TASK={record['task']} PRESET={record['preset']}`, then export")


def _plain(name: str) -> str:
    from core.results import file_stem

    return re.sub(r"[^A-Za-z0-9_.+-]", "_", file_stem(name))
