"""`make regress`: the CI gate on interpretability scores.

Each check runs the real front door (`python -m bench bench ...`) in a subprocess whose results go to
a scratch folder, then compares the scores that matter with the committed references in
`results/regress/<mode>.json`, each within a tolerance declared per metric below, and prints
reference / now / delta / tolerance. Any score outside its tolerance, or missing, exits 1.

Modes:
- `checkpoints` (default): the committed `cpu` checkpoints and SAEs, fixed seeds, evaluated at a size
  small enough for CI (100 + 100 probe games for chess); tasks that train their own models
  (superposition) run their `tiny` preset. The same computation as the reference: tolerances only
  absorb machine-to-machine float differences.
- `tiny`: trains the `tiny` models of the checks below from scratch end to end (chess, language with
  the lexical auto-interp backend, superposition) in a scratch folder and checks with looser
  tolerances, since training amplifies float differences.

`python -m bench.regress --update [--mode M]` rewrites the references from a fresh run and records
the git sha; `--only chess` (tasks, comma-separated) rewrites just those tasks' checks, after their
models were retrained, and keeps the others' entries as they were, each entry with the sha and
command that made it. References are never edited by hand.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from bench.own_data import refuse_own_data
from bench.own_dictionary import refuse_own_dictionary
from core.arguments import OneLineParser
from core.errors import BenchError, run_command
from core.results import ROOT, atomic_write_text, git_sha, load_result, result_path, results_root
from core.threads import add_threads_argument

# Why each tolerance is what it is. Evaluation of a fixed checkpoint repeats the same arithmetic;
# another CPU (other SIMD width, other BLAS kernel order) changes float sums in the last bits, which
# can move a feature across one of the 11 thresholds or a probe's L-BFGS path slightly.
EVAL_NOISE = ("fixed checkpoint, same code: float summation order differs between CPUs; a flipped "
              "threshold decision moves a 768-BSP mean by about 1e-3")
TRAIN_NOISE = ("trained from scratch: float differences compound over the training steps; tiny "
               "models are far from converged, so their scores move more")
TOY_NOISE = "toy models trained from scratch on the tiny preset: seeded, float noise compounds over 150 steps"

CHESS_EVAL = ("probe_games=100", "random_floor=false", "legal_move_games=0")
# 50 of the cpu preset's 200 features: the same lexical scoring, a quarter of the time; no random-init floor
# (it would double the time, and the trained model's scores do not depend on it).
LANGUAGE_EVAL = ("n_features=50", "random_floor=false")
LANGUAGE_NOISE = ("fixed checkpoint, same code: a float difference can move a window's maximum across 0 "
                  "(activating or not) or a token across the 0.3 x max highlight, changing one answer of one "
                  "feature: about 0.002 of a 50-feature mean balanced accuracy")
LANGUAGE_SCORES = {"detection": 0.01, "fuzzing": 0.01, "perplexity": 0.01, "loss_recovered": 0.002}


@dataclass(frozen=True)
class Check:
    task: str
    model: str
    preset: str
    overrides: tuple[str, ...] = ()
    tolerances: dict[str, float] = field(default_factory=dict)  # metric -> largest |now - reference|
    why: str = EVAL_NOISE

    @property
    def key(self) -> str:
        return f"{self.task}/{self.model}/{self.preset}"


CHESS_SCORES = {"coverage": 0.005, "reconstruction": 0.005, "probe_f1": 0.01}
SUPERPOSITION = {"features_per_dim": 0.05, "monosemantic_fraction": 0.05, "loss": 0.01}

MODES = {
    "checkpoints": [
        Check("chess", "dense", "cpu", CHESS_EVAL, CHESS_SCORES),
        Check("chess", "moex", "cpu", CHESS_EVAL, CHESS_SCORES),
        Check("chess", "dense+sae", "cpu", CHESS_EVAL, {**CHESS_SCORES, "loss_recovered": 0.005}),
        Check("language", "dense", "cpu", LANGUAGE_EVAL, LANGUAGE_SCORES, LANGUAGE_NOISE),
        Check("language", "dense+sae", "cpu", LANGUAGE_EVAL, LANGUAGE_SCORES, LANGUAGE_NOISE),
        Check("language", "moex", "cpu", LANGUAGE_EVAL, LANGUAGE_SCORES, LANGUAGE_NOISE),
        Check("language", "switch", "cpu", LANGUAGE_EVAL, LANGUAGE_SCORES, LANGUAGE_NOISE),
        Check("superposition", "dense", "tiny", (), SUPERPOSITION, TOY_NOISE),
        Check("superposition", "moex", "tiny", (), SUPERPOSITION, TOY_NOISE),
    ],
    "tiny": [
        Check("chess", "dense", "tiny", ("probe_games=40",), {"coverage": 0.03, "reconstruction": 0.03}, TRAIN_NOISE),
        Check("chess", "moex", "tiny", ("probe_games=40",), {"coverage": 0.03, "reconstruction": 0.03}, TRAIN_NOISE),
        # Dense neurons with weakest-window negatives: the tiny model whose features reliably get scored.
        Check("language", "dense", "tiny", ("negatives=weakest", "random_floor=false"),
              {"perplexity": 50.0, "loss_recovered": 1e-4, "detection": 0.1, "fuzzing": 0.1}, TRAIN_NOISE),
        # A run that scores no feature is an error; these sample enough features for some to be scored.
        Check("language", "moex", "tiny", ("negatives=weakest", "n_features=256", "random_floor=false"),
              {"perplexity": 50.0, "loss_recovered": 1e-4}, TRAIN_NOISE),
        Check("language", "dense+sae", "tiny", ("negatives=weakest", "n_features=256", "random_floor=false"),
              {"perplexity": 50.0, "loss_recovered": 0.1}, TRAIN_NOISE),
        Check("superposition", "moex", "tiny", (), SUPERPOSITION, TOY_NOISE),
    ],
}


def reference_path(mode: str) -> Path:
    return results_root() / "regress" / f"{mode}.json"


def _require_checkpoint(check: Check) -> None:
    """The checkpoints mode evaluates committed models: a missing one would silently train for an
    hour inside CI, so it is an error instead."""
    from bench import registry
    from bench.model_store import checkpoint_stem
    from models.checkpoint import read_meta

    adapter = registry.model_adapter(check.model)
    if registry.task(check.task).builds_own_models:
        return  # a task that trains its own toy models
    name = adapter.base_model or check.model
    stem = checkpoint_stem(check.task, name, check.preset, 0)
    if read_meta(stem) is None:
        raise BenchError(f"regress check {check.key} needs the committed checkpoint {stem}.safetensors; "
                         f"train it with `make train MODEL={name} TASK={check.task} PRESET={check.preset}` "
                         f"and commit it")


def _variant(check: Check) -> str | None:
    """The results folder the check's overrides send its run to (a task keeps other settings apart)."""
    from bench import registry
    from bench.run_target import filed_config, results_variant, settings_for

    task, adapter_cls = registry.task(check.task), registry.model_adapter(check.model)
    config = filed_config(task, settings_for(adapter_cls, task, list(check.overrides)), adapter_cls, check.preset)
    return results_variant(task, config, adapter_cls)


def _run_check(check: Check, scratch: Path, mode: str, threads: int) -> dict:
    env = {**os.environ, "MOEXBENCH_RESULTS": str(scratch / "results")}
    if mode == "checkpoints":
        _require_checkpoint(check)
        env["MOEXBENCH_NO_TRAIN"] = "1"  # an SAE out of date with its record fails too, rather than retraining
    if mode == "tiny":  # everything from scratch: nothing committed is read or written
        for name in ("CHECKPOINTS", "RUNS", "CACHE"):
            env[f"MOEXBENCH_{name}"] = str(scratch / name.lower())
    cmd = [sys.executable, "-m", "bench", "bench", "--task", check.task, "--model", check.model,
           "--preset", check.preset, "--seed", "0", "--threads", str(threads), *check.overrides]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise BenchError(f"regress check {check.key} failed to run: {last}")
    written = result_path(check.task, check.model, check.preset, 0, _variant(check)).relative_to(results_root())
    record = load_result(scratch / "results" / written)
    return {m: record["metrics"].get(m) for m in check.tolerances}


def run(mode: str, update: bool, threads: int, only: tuple[str, ...] = ()) -> int:
    checks = MODES[mode]
    path = reference_path(mode)
    reference = None
    unknown = sorted(set(only) - {c.task for c in checks})
    if unknown or (only and not update):
        why = f"tasks {', '.join(unknown)} have no check in mode {mode}" if unknown else "goes with --update"
        raise BenchError(f"--only {','.join(only)}: {why}; tasks with checks: "
                         f"{', '.join(sorted({c.task for c in checks}))}")
    if only:
        if not path.exists():
            raise BenchError(f"--only needs the existing reference {path} to keep the other tasks' entries; run "
                             f"`python -m bench.regress --update --mode {mode}` first")
        reference = json.loads(path.read_text())
        checks = [c for c in checks if c.task in only]
    elif not update:
        if not path.exists():
            raise BenchError(f"no regression reference at {path}; create it with "
                             f"`python -m bench.regress --update --mode {mode}`")
        reference = json.loads(path.read_text())
    with tempfile.TemporaryDirectory(prefix="moexbench-regress-") as tmp:
        now = {}
        for check in checks:
            print(f"running {check.key} {' '.join(check.overrides)}", flush=True)
            now[check.key] = _run_check(check, Path(tmp), mode, threads)
    if update:
        command = f"python -m bench.regress --update --mode {mode}" + (f" --only {','.join(only)}" if only else "")
        made = {"git_sha": git_sha(), "command": command,
                "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
        entries = dict(reference["checks"]) if only else {}
        entries.update({c.key: {"overrides": list(c.overrides), "metrics": now[c.key], **made} for c in checks})
        ordered = {c.key: entries[c.key] for c in MODES[mode] if c.key in entries}
        # The top level describes the last full update; an --only update is recorded in its entries.
        top = {k: reference[k] for k in ("git_sha", "command", "created") if k in reference} if only else made
        atomic_write_text(path, json.dumps({"mode": mode, **top, "checks": ordered}, indent=2) + "\n")
        print(f"wrote {path}")
        return 0
    return _compare(checks, reference, now)


def _compare(checks: list[Check], reference: dict, now: dict) -> int:
    rows, failed = [], 0
    for check in checks:
        ref = reference.get("checks", {}).get(check.key, {}).get("metrics", {})
        for metric, tol in check.tolerances.items():
            r, n = ref.get(metric), now[check.key].get(metric)
            if r is None or n is None:
                ok, delta = False, None
            else:
                delta = n - r
                ok = abs(delta) <= tol
            failed += not ok
            rows.append((check.key, metric, r, n, delta, tol, "ok" if ok else "REGRESSED" if delta is not None
                         else "MISSING"))
    print(f"\nreference: {reference.get('git_sha')} ({reference.get('created')})")
    print(f"{'check':34} {'metric':18} {'reference':>10} {'now':>10} {'delta':>10} {'tolerance':>10}  status")
    for key, metric, r, n, delta, tol, status in rows:
        fmt = lambda v: "-" if v is None else f"{v:10.4f}"  # noqa: E731
        print(f"{key:34} {metric:18} {fmt(r):>10} {fmt(n):>10} {fmt(delta):>10} {tol:10.4g}  {status}")
    print("\ntolerances: " + "; ".join(sorted({c.why for c in checks})))
    if failed:
        print(f"\n{failed} score(s) outside tolerance or missing")
        return 1
    print("\nall scores within tolerance")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=list(MODES), default="checkpoints")
    parser.add_argument("--update", action="store_true", help="rewrite the reference from a fresh run")
    parser.add_argument("--only", default="", help="with --update: only these tasks' checks (comma-separated)")
    add_threads_argument(parser)
    args = parser.parse_args(argv)
    only = tuple(t for t in args.only.split(",") if t)
    code = {}

    def body():
        for task in ("chess", "language"):
            refuse_own_data(task, "make regress (against the committed references)")
        refuse_own_dictionary("make regress (against the committed references)")
        code["rc"] = run(args.mode, args.update, args.threads, only)

    status = run_command(body)
    return status or code.get("rc", 0)


if __name__ == "__main__":
    sys.exit(main())
