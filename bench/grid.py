"""The runs behind the paper comparisons, as one resumable command.

`python -m bench.grid --task chess --preset cpu --jobs 2` runs, for every (model, seed) of the
preset's grid whose result file is missing, `make bench` (training the checkpoint first when absent;
an interrupted training resumes from its last checkpoint), `--jobs` at a time with one thread each.
A result that exists is skipped, so the command picks up where an earlier session stopped, unless it
was scored on an earlier training of its checkpoint than the one on disk (a seed's checkpoint trained
again after it was lost with a machine): that run is scored again, so a seed's results describe one model.
A run over another model's checkpoint (an SAE over dense, dense continued from dense) starts once
that checkpoint of the same seed is on disk; until then it waits while someone is making it, so no
two jobs train one checkpoint, and the next independent run takes the slot. A run whose checkpoint
another process is training (a `make bench` outside the grid, the main grid for a variant's) waits
the same way instead of holding a slot blocked on that training's lock. `--dry-run` lists what would run.
Task settings after the options (`layer=-1`) run that variant's grid, scoring the same checkpoints
at other settings into the variant's folder (results/chess/layer.-1/).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from bench.model_store import checkpoint_complete, checkpoint_stem, trainer_pid
from bench.own_data import refuse_own_data
from bench.own_dictionary import refuse_own_dictionary
from core.arguments import OneLineParser
from core.errors import BenchError, run_command
from core.paths import RUNS
from core.progress import progress as progress_bar
from core.results import ROOT, file_stem, result_path

# cpu: dense, switch, moex and moe with three seeds each (about 85 minutes a model on one thread
# here; a dictionary over dense, minutes, rides on dense's seed), then seed 0 of the ReLU dense model
# and the corners of Tables 3 and 4. The top-k MLP control comes before seed 2: it is the baseline that
# separates sparse activations from experts, where the corners are one-seed ablations.
# Then `moex-balanced`, the SAE architectures other than top-k over the same dense seeds (seed 1 last:
# its dense checkpoint, like every seed's but 0, stays on the machine that trained it), and last
# `moex-centred`: with `moex-balanced` it asks whether MoE-X's unused experts are what a load-balancing
# loss, or a router blind to the input's shared component, would fix.
# short and its widths: the width sweep (Fig. 3/5).
DICTIONARIES = ("dense+sae", "dense+attn-sae", "dense+transcoder", "dense+snmf")
SAE_ARCHITECTURES = ("dense+sae:standard", "dense+sae:batchtopk", "dense+sae:jumprelu", "dense+sae:gated")
_MAIN = ("dense", *DICTIONARIES, "switch", "moex", "moe")
GRIDS = {
    ("chess", "cpu"): [(m, s) for s in (0, 1) for m in _MAIN] + [("dense-topk", 0)]
                      + [(m, 2) for m in _MAIN]
                      + [(m, 0) for m in ("dense-relu", "dense-continued", "moex-upcycled", "switch-relu",
                                          "moex-gelu", "moe-relu", "moex-balanced")]
                      + [(m, s) for s in (0, 2, 1) for m in SAE_ARCHITECTURES] + [("moex-centred", 0)],
    **{("chess", p): [("dense", 0), ("moex", 0)] for p in ("short-w128", "short", "short-w384")},
    # language: seed 0 of each model; then seeds 1-2 of dense and its dictionaries, so the dictionaries
    # (minutes each) get a seed spread beside MoE-X's units (a language dense model is about 100 minutes).
    ("language", "cpu"): [("dense", 0), *((m, 0) for m in DICTIONARIES), ("moex", 0), ("switch", 0),
                          ("dense-topk", 0)] + [(m, s) for s in (1, 2) for m in ("dense", *DICTIONARIES)],
    # The same models at the last block (the second chess reading): their own checkpoints, no dictionary.
    ("chess", "cpu", "layer.-1"): [(m, s) for s in (0, 1, 2) for m in ("dense", "switch", "moex", "moe")],
}
# The task settings (`ARGS`) of each variant grid, whose results folder is the key's third part (a test
# checks that these settings send results there).
VARIANT_SETTINGS = {("chess", "cpu", "layer.-1"): ("layer=-1",)}


def grid_variant(task: str, overrides: list[str]) -> str | None:
    """The results folder that task settings send a grid's runs to (None: the main one)."""
    from bench import registry
    from core.task_config import apply_overrides

    task_module = registry.task(task)
    return task_module.result_variant(apply_overrides(task_module.Config(), overrides))


def _grid_name(task: str, preset: str, variant: str | None = None) -> str:
    return f"{task}/{preset}" + (f" ({variant})" if variant else "")


def missing(task: str, preset: str, overrides: list[str] = ()) -> list[tuple[str, int]]:
    variant = grid_variant(task, list(overrides))
    grid = (task, preset, variant) if variant else (task, preset)
    if grid not in GRIDS:
        raise BenchError(f"no grid for task {task!r} at preset {preset!r}"
                         + (f" with {' '.join(overrides)}" if overrides else "")
                         + f"; grids: {', '.join(_grid_name(*known) for known in GRIDS)}")
    return [(m, s) for m, s in GRIDS[grid] if not result_path(task, m, preset, s, variant).exists()]


def scored_on_earlier_weights(task: str, preset: str, overrides: list[str] = ()) -> list[tuple[str, int]]:
    """The grid's runs whose result was scored on an earlier training of its checkpoint than the one on
    disk now (a seed's checkpoint trained again after it was lost with a machine, bench/model_identity.py)
    and that `make bench` may replace (not read-only, measured with the same settings): scored again,
    so that every result of a seed describes one model."""
    variant = grid_variant(task, list(overrides))
    grid = (task, preset, variant) if variant else (task, preset)
    return [(m, s) for m, s in GRIDS.get(grid, []) if _scored_on_earlier_weights(task, m, preset, s, overrides)]


def _scored_on_earlier_weights(task: str, model: str, preset: str, seed: int, overrides: list[str]) -> bool:
    import json

    from bench import registry
    from bench.model_identity import scored_before_retraining
    from bench.run_target import checked_target, settings_for

    path = result_path(task, model, preset, seed, grid_variant(task, list(overrides)))
    try:
        record = json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
    except (OSError, ValueError):
        return False  # damaged: `make report` names it
    if record is None or not scored_before_retraining(record, task):
        return False
    task_module, adapter_cls = registry.task(task), registry.model_adapter(model)
    try:  # what `make bench` would refuse before any work (a read-only result, other settings) stays as it is
        checked_target(adapter_cls, task_module, settings_for(adapter_cls, task_module, list(overrides)), preset, seed)
    except BenchError:
        return False
    return True


def depends_on(model: str) -> str | None:
    """The model whose checkpoint `model`'s run loads or starts from (same seed), if any."""
    from bench import registry

    adapter_cls = registry.model_adapter(model)
    return adapter_cls.base_model or getattr(adapter_cls, "initialise_from", None)


def blocking_lock(model: str, seed: int, depends=depends_on, available=lambda model, seed: False,
                  locked=lambda model, seed: False) -> tuple[str, int] | None:
    """The checkpoint (model, seed) that `model`'s run needs and that is missing while some process
    holds its training lock (`locked`): the run's own, or the one it rides on. None when neither."""
    for need in (model, depends(model)):
        if need is not None and not available(need, seed) and locked(need, seed):
            return need, seed
    return None


def next_runnable(todo: list[tuple[str, int]], running: list[tuple[str, int]], depends=depends_on,
                  available=lambda model, seed: False, locked=lambda model, seed: False) -> int | None:
    """Index in `todo` of the first run that can start now; None when every remaining one waits.
    A run over another model's checkpoint (same seed) can start once that checkpoint is `available`
    on disk; until then it waits while the checkpoint's own run is to run or running, or while
    another run over it is running (that one is training it). Any run whose checkpoint (its own, or
    the one it rides on) is missing while its training lock is held (`locked`: a `make bench` outside
    the grid, the main grid under a variant's, or this grid's own job) waits too, rather than hold a
    slot blocked on that lock."""
    busy = set(todo) | set(running)
    for i, (model, seed) in enumerate(todo):
        if blocking_lock(model, seed, depends, available, locked):
            continue
        dep = depends(model)
        if dep is None or available(dep, seed):
            return i
        if (dep, seed) in busy or any(depends(m) == dep and s == seed for m, s in running):
            continue
        return i
    return None


def retrained_dependencies(task: str, preset: str, todo: list[tuple[str, int]],
                           variant: str | None = None) -> list[str]:
    """One line per model checkpoint that runs of `todo` need and that is neither on disk nor made by a
    run of `todo` (typically: its result exists, but its weights, as a seed other than 0's are not
    committed, were left on another machine), so the first run that needs it trains it again.
    In a variant's grid every run needs a checkpoint the main grid made: its model's own, or the one
    its dictionary is fitted over."""
    def needed(model: str) -> str | None:
        return depends_on(model) or (model if variant else None)

    lines = []
    for dep, seed in dict.fromkeys((needed(m), s) for m, s in todo):
        if dep is None or (not variant and (dep, seed) in todo):
            continue
        stem = checkpoint_stem(task, dep, preset, seed)
        if not checkpoint_complete(stem):
            users = ", ".join(m for m, s in todo if s == seed and needed(m) == dep)
            verb = "needs" if "," not in users else "need"
            line = f"note: {users} seed {seed} {verb} {stem.name}.safetensors, which is not here: "
            if not result_path(task, dep, preset, seed).exists():  # nothing was scored on it yet
                lines.append(line + "the first of them trains it (same recipe and seed)")
                continue
            lines.append(line + f"the first of them trains it again (same recipe and seed). Trained on another "
                         f"machine, it can differ from the model behind {dep}'s seed-{seed} result and the other "
                         f"results over it; once it is trained, each grid scores its own of those again: "
                         f"{' and '.join(_grid_commands(task, preset))}")
    return lines


def _grid_commands(task: str, preset: str) -> list[str]:
    """The `make grid` command of every grid of this task and preset (the main one, then its variants')."""
    commands = []
    for key in GRIDS:
        if key[:2] == (task, preset):
            args = "" if len(key) == 2 else f" ARGS=\"{' '.join(VARIANT_SETTINGS[key])}\""
            commands.append(f"make grid TASK={task} PRESET={preset}{args}")
    return commands


def run_grid(task: str, preset: str, jobs: int, dry_run: bool, overrides: list[str] = ()) -> None:
    overrides = list(overrides)
    todo = missing(task, preset, overrides)
    again = scored_on_earlier_weights(task, preset, overrides)
    variant = grid_variant(task, overrides)
    print(f"{_grid_name(task, preset, variant)}: {len(todo)} run(s) missing: "
          f"{', '.join(f'{m} seed {s}' for m, s in todo) or 'none'}")
    for line in retrained_dependencies(task, preset, todo, variant):
        print(line)
    if again:
        print(f"{len(again)} run(s) scored on an earlier training of their checkpoint than the one here, to score "
              f"again: {', '.join(f'{m} seed {s}' for m, s in again)}")
        todo[:0] = again  # minutes each, before the missing runs (hours of training, some of them)
    if dry_run or not todo:
        return

    def available(model: str, seed: int) -> bool:
        return checkpoint_complete(checkpoint_stem(task, model, preset, seed))

    def locked(model: str, seed: int) -> bool:
        return trainer_pid(task, model, preset, seed) is not None

    said_waiting = set()

    def say_who_trains(bar, running_pids: set[str]) -> None:
        """Once per run: the outside process whose training it waits for (a hung one would otherwise
        leave the grid idle without a word)."""
        for model, seed in todo:
            blocked = blocking_lock(model, seed, available=available, locked=locked)
            pid = blocked and trainer_pid(task, blocked[0], preset, seed)
            if pid and pid not in running_pids and (model, seed) not in said_waiting:
                said_waiting.add((model, seed))
                bar.write(f"waiting: {model} seed {seed} needs {blocked[0]} seed {seed}, "
                          f"which process {pid} is training")

    logs = RUNS / "grid"
    logs.mkdir(parents=True, exist_ok=True)
    running: list[tuple[subprocess.Popen, str, object, tuple[str, int]]] = []
    failed = []
    bar = progress_bar(total=len(todo), desc=f"grid {_grid_name(task, preset, variant)}", unit="run")
    while todo or running:
        while todo and len(running) < jobs:
            index = next_runnable(todo, [key for *_, key in running], available=available, locked=locked)
            if index is None:
                break
            model, seed = todo.pop(index)
            name = f"{task}-{file_stem(model)}-{preset}{'-' + variant if variant else ''}-seed{seed}"
            # written meanwhile, or scored again, by hand or by another grid
            if result_path(task, model, preset, seed, variant).exists() and not (
                    (model, seed) in again and _scored_on_earlier_weights(task, model, preset, seed, overrides)):
                why = ("it is no longer scored on an earlier training of its checkpoint (scored again meanwhile, "
                       "or the checkpoint is being written)" if (model, seed) in again else "its result exists now")
                bar.write(f"skipped {name}: {why}")
                bar.update(1)
                continue
            log = open(logs / f"{name.replace('+', '_')}.log", "w")
            cmd = [sys.executable, "-m", "bench", "bench", "--task", task, "--model", model, "--preset", preset,
                   "--seed", str(seed), "--threads", "1", *overrides]
            # The logs keep findings, not bar redraws. The runs fill the cores already: none forks a second
            # process for its random-init floor (core/side_process.py).
            env = {**os.environ, "MOEXBENCH_QUIET": "1", "MOEXBENCH_SIDE_PROCESS": "0"}
            proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
            running.append((proc, name, log, (model, seed)))
            bar.write(f"started {name} (log {log.name})")
            sys.stdout.flush()
        say_who_trains(bar, {str(proc.pid) for proc, *_ in running})
        time.sleep(5)
        finished = False
        for job in list(running):
            proc, name, log, _ = job
            if proc.poll() is not None:
                finished = True
                running.remove(job)
                log.close()
                bar.write(f"{'finished' if proc.returncode == 0 else 'FAILED'} {name}")
                sys.stdout.flush()
                bar.update(1)
                if proc.returncode:
                    failed.append(name)
        if finished:
            # A run of this grid that trained a lost checkpoint again leaves the results scored on the old
            # one behind: scored again next (before what is left: minutes each), once each (a failed one is
            # not retried here).
            later = [key for key in scored_on_earlier_weights(task, preset, overrides) if key not in again]
            if later:
                bar.write(f"{len(later)} run(s) now scored on an earlier training of their checkpoint, to score "
                          f"again next: {', '.join(f'{m} seed {s}' for m, s in later)}")
                again += later
                todo[:0] = later
                bar.total += len(later)
                bar.refresh()
    bar.close()
    if failed:
        raise BenchError(f"{len(failed)} run(s) failed: {', '.join(failed)}; see runs/grid/*.log")


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="chess")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--jobs", type=int, default=2, help="runs at once, one thread each")
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="task settings of a variant's grid (layer=-1), passed to every run")
    args = parser.parse_args(argv)

    def body():
        refuse_own_data(args.task, "make grid (the committed comparison's runs)")
        refuse_own_dictionary("make grid (the committed comparison's runs)")
        run_grid(args.task, args.preset, max(1, args.jobs), args.dry_run, args.overrides)

    return run_command(body)


if __name__ == "__main__":
    sys.exit(main())
