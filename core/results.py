"""The results contract: results/<task>/<model>.json, written atomically, holding task, model,
preset, schema_version, flat `metrics` (name -> finite number), `config`, `provenance` (git sha,
versions, seed, creation time, deviations, ...) and `details`; per-item rows go to a `.jsonl` beside it.

The default preset (cpu) writes `results/<task>/<model>.json`; other presets write under
`results/<task>/<preset>/`, seeds other than 0 under `.../seeds/`, and a task's variant of its
evaluation (the language task's LLM backend) under `.../<variant>/`, so a tiny run, a second seed or
another scorer never overwrites the committed numbers.
"""

from __future__ import annotations

import datetime
import errno
import json
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from core.errors import BenchError
from core.paths import ROOT

SCHEMA_VERSION = 1
DEFAULT_PRESET = "cpu"


def results_root() -> Path:
    return Path(os.environ.get("MOEXBENCH_RESULTS", ROOT / "results"))


def task_dir(task: str, preset: str = DEFAULT_PRESET) -> Path:
    base = results_root() / task
    return base if preset == DEFAULT_PRESET else base / preset


SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def result_dir(task: str, preset: str = DEFAULT_PRESET, variant: str | None = None) -> Path:
    # Every name here becomes part of a path: `../language` would write over another task's files.
    for kind, name in (("task", task), ("preset", preset), ("variant", variant)):
        if name is not None and not SAFE_NAME.fullmatch(name):
            raise BenchError(f"{kind} {name!r} is not a plain name (letters, digits, -, _ and .); nothing was written")
    return task_dir(task, preset) / variant if variant else task_dir(task, preset)


def ensure_writable(folder: Path, create: bool = True,
                    fix: str = "make it writable or point MOEXBENCH_RESULTS / MOEXBENCH_CHECKPOINTS elsewhere") -> None:
    """Fails now, in one line, rather than after an hour of work that then cannot be saved. With
    create=False nothing is left behind: the deepest folder that exists, where the missing ones would
    be made, is tried instead, so a run refused later for another reason leaves no empty folder."""
    where = folder
    try:
        if create:
            folder.mkdir(parents=True, exist_ok=True)
        else:
            # a dangling link does not exist but blocks the mkdir: it stops the walk too
            where = next(p for p in [folder, *folder.parents] if p.exists() or p.is_symlink())
            if not where.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, "a file or a broken link, not a folder")
        # a real write, not os.access: as root it says yes where mkdir then fails (a read-only mount, /proc)
        probe = where / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        said = e.strerror if where == folder else f"{where}: {e.strerror}"
        raise BenchError(f"cannot write to {folder} ({said}); {fix}") from None


def refuse_read_only(path: Path) -> None:
    """A result file made read-only is one someone meant to keep: a rename would replace it all the
    same (the folder's permission decides that), so it is refused here, before any work. The mode is
    read, not os.access: as root, access says yes to every file."""
    if path.is_file() and not path.stat().st_mode & 0o222:
        raise BenchError(f"{path} is read-only, so it is kept; make it writable (chmod u+w) to score it again, or "
                         f"point MOEXBENCH_RESULTS elsewhere")


def file_stem(model: str) -> str:
    """A model name as a file name: `dense+sae:gated` -> `dense+sae-gated` (colons trouble some tools)."""
    return model.replace(":", "-")


def result_path(task: str, model: str, preset: str, seed: int, variant: str | None = None) -> Path:
    base = result_dir(task, preset, variant)
    stem = file_stem(model)
    return (base if seed == 0 else base / "seeds") / (f"{stem}.json" if seed == 0 else f"{stem}.seed{seed}.json")


def git_sha() -> str:
    """HEAD's sha, "-dirty" when a tracked file outside results/ differs from it, and
    "-code-changed-during-run" when our source changed after this process started (core/code_state.py):
    what it wrote came from a mix."""
    from core.code_state import changed_since_start

    return _head_sha() + ("-code-changed-during-run" if changed_since_start() else "")


def _head_sha() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10)
        # Code changes make a result "-dirty"; other results being rewritten alongside do not.
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!results"],
                               cwd=ROOT, capture_output=True, text=True, timeout=10)
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "") if sha.returncode == 0 else "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def versions() -> dict:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("torch", "numpy", "chess", "transformer-lens", "sae-lens"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def atomic_write(path: Path, write) -> None:
    """write(temp path), then rename it over `path`: the file is whole or absent, never half written.
    The temp name is unique (two processes writing one path never share it) and a failed write
    removes it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp's 0600 would follow the file after the rename
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text))


def save_figure(fig, path: Path, **savefig_kwargs) -> None:
    """fig.savefig(path), whole or not at all (the format named, since the temp name has no suffix)."""
    atomic_write(path, lambda tmp: fig.savefig(tmp, format=path.suffix.lstrip("."), **savefig_kwargs))


def refuse_other_measurement(path: Path, config) -> None:
    """Refuses, before any work, a run that would replace `path` with a result measured otherwise: one
    of the config's MEASUREMENT settings (how many probe games, how many features) differs from the
    stored result's. Deleting the file, or writing elsewhere with MOEXBENCH_RESULTS, is the way."""
    fields = getattr(type(config), "MEASUREMENT", ())
    if not fields or not path.exists():
        return
    stored = load_result(path).get("config") or {}
    preset_zero = getattr(type(config), "ZERO_MEANS_PRESET", ())

    def said(name: str, value) -> str:  # 0 of such a setting is not zero games but the preset's number
        return f"{value!r} (the preset's number)" if name in preset_zero and value == 0 else repr(value)
    differs = [f"{name}={said(name, stored[name])} there, {said(name, getattr(config, name))} now" for name in fields
               if name in stored and stored[name] != getattr(config, name)]
    if differs:
        raise BenchError(f"{path} was measured with other settings ({'; '.join(differs)}) and this run would replace "
                         f"it; write this one elsewhere (MOEXBENCH_RESULTS=<folder>) or delete that file to replace it")


def write_result(task: str, model: str, preset: str, seed: int, metrics: dict, config: dict, details: dict,
                 provenance_extra: dict, per_item: list[dict] | None = None, variant: str | None = None) -> Path:
    for name, value in metrics.items():
        if not _finite_number(value):
            raise BenchError(f"metric {name!r} is {value!r}, not a finite number; nothing was written")
    _check_declared(task, metrics, "nothing was written (a bug in the metric: please report it)")
    record = {
        "task": task, "model": model, "preset": preset, "schema_version": SCHEMA_VERSION,
        "metrics": metrics, "config": config,
        "provenance": {"git_sha": git_sha(), "versions": versions(), "seed": seed,
                       "torch_threads": torch.get_num_threads(),  # results match only at the same count
                       "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                       **provenance_extra},
        "details": details,
    }
    if record["provenance"]["git_sha"].endswith("-code-changed-during-run"):
        print("warning: our source changed while this run was under way, so its result may come from two versions "
              "of the code; it is marked so in its provenance (git_sha); run it again to replace it", file=sys.stderr)
    path = result_path(task, model, preset, seed, variant)
    if per_item is not None:
        atomic_write_text(path.with_suffix(".jsonl"), "".join(json.dumps(row) + "\n" for row in per_item))
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")
    return path


# Other JSON that lives beside results (the chess training curve, the tokenizer measurement) and is not a
# result of the contract.
NOT_RESULTS = ("training_curve_", "tokenizer_choice")
# The finished stages of a long run still going, beside its results (tasks/superposition/resume.py): not
# results. With the other seeds' results, the folders beside a preset's results that are not variants of it.
UNFINISHED = "unfinished"
NOT_VARIANTS = ("seeds", UNFINISHED)


def result_files(folder: Path) -> list[Path]:
    return [p for p in sorted(folder.glob("*.json")) if not p.name.startswith(NOT_RESULTS)]


def with_seeds(folder: Path, record: dict) -> list[dict]:
    """A seed-0 result and the results of the model's other seeds in `folder`/seeds, each seed's
    record carrying its file as `_path`."""
    paths = sorted((folder / "seeds").glob(f"{file_stem(record['model'])}.seed*.json"))
    return [record] + [load_result(p) | {"_path": p} for p in paths]


def load_results(folder: Path) -> list[dict]:
    """Every result in a folder, each carrying its file as `_path`."""
    return [load_result(p) | {"_path": p} for p in result_files(folder)]


def _finite_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def load_result(path: Path) -> dict:
    """A result file, checked: the contract's fields, and metrics that are all finite numbers (a
    report must never average what is not there). A file that fails is named with the one fix that
    works whoever reads it (a report, or the bench about to write over it, which refuses to)."""
    fix = "delete or move it, then rerun the bench that wrote it"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BenchError(f"{path} is not valid JSON ({e}); {fix}") from None
    except OSError as e:  # a folder where the result should be, an unreadable file
        raise BenchError(f"{path} cannot be read as a result ({e.strerror}); {fix}") from None
    if not isinstance(record, dict):
        raise BenchError(f"{path}: holds a {type(record).__name__}, not a result object; {fix}")
    if record.get("schema_version") != SCHEMA_VERSION:
        raise BenchError(f"{path}: schema_version {record.get('schema_version')!r}, expected {SCHEMA_VERSION}; {fix}")
    for field in ("task", "model", "preset", "metrics", "provenance"):
        if field not in record:
            raise BenchError(f"{path}: missing field {field!r}; {fix}")
    if not isinstance(record["metrics"], dict):
        raise BenchError(f"{path}: metrics is a {type(record['metrics']).__name__}, not a name -> number mapping; "
                         f"{fix}")
    for name, value in record["metrics"].items():
        if not _finite_number(value):
            raise BenchError(f"{path}: metric {name!r} is {value!r}, not a finite number; {fix}")
    _check_declared(record["task"], record["metrics"], f"in {path}; {fix}")
    return record


def _check_declared(task: str, metrics: dict, what_then: str) -> None:
    """Each metric the task declares must lie in its declared range."""
    from core.metrics import lookup

    if not (isinstance(task, str) and SAFE_NAME.fullmatch(task)):
        return
    for name, value in metrics.items():
        metric = lookup(task, name)
        problem = metric.check(value) if metric else None
        if problem:
            raise BenchError(f"metric {name!r} of task {task}: {problem}, {what_then}")
