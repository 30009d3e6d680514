"""A superposition run that survives being killed: the `paper` preset trains for hours.

A run is a fixed sequence of stages (one sweep per toy configuration, then the specialisation runs),
all drawing from one random generator. It keeps two folders, each with `fingerprint.json` (the settings,
the source of the code, torch's version and thread count; a resumed run where any differs is refused,
naming the field, since its finished stages came from them):
- the stage in progress, on this machine: runs/superposition/<model>-<preset>-seed<s>[-variant]/
  `<stage>.state.pt` (weights, optimizer, generator, step, the losses of the last steps, the time
  spent so far), replaced atomically every few minutes;
- the finished stages, beside the results: results/superposition/[<preset>/][<variant>/]unfinished/
  <model>-seed<s>/`<stage>.done.json` (the stage's records, the generator's state after it, its
  time, the fingerprint's hash), tens to hundreds of kilobytes each, so that they can be committed and
  a clone on another machine goes on from them: a `paper` run is longer than a working session, and a
  machine's runs/ may not outlive it.
The same command again skips the finished stages (restoring the generator as it was after each) and
continues the stage in progress from its last state: the result equals an uninterrupted run's. When
every stage is done and the result is written, the runner removes both folders (`finish`): the
result file is what a run leaves.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Callable

import torch

from core.errors import BenchError
from core.paths import ROOT
from core.results import atomic_write, atomic_write_text, ensure_writable

SAVE_EVERY_S = 180.0


def _atomic_save(obj, path: Path) -> None:
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def _differences(saved, now, prefix: str = "") -> list[str]:
    """The dotted names of the fields where two fingerprints differ, down to the leaves."""
    if isinstance(saved, dict) and isinstance(now, dict):
        return [d for key in sorted(set(saved) | set(now))
                for d in _differences(saved.get(key), now.get(key), f"{prefix}{key}.")]
    return [] if saved == now else [f"{prefix.rstrip('.')} ({saved!r}, now {now!r})"]


def _load(path: Path):
    try:
        return torch.load(path, weights_only=True)
    except Exception as e:  # a file this module wrote whole, so damage is outside interference
        raise BenchError(f"resume state {path} is unreadable ({type(e).__name__}); "
                         f"delete it to redo that stage") from None


# The modules a run's numbers come from. Figures, tables and metric descriptions are left out, so
# that editing them does not refuse to resume hours of training.
COMPUTING = ("config.py", "metrics.py", "presets.py", "resume.py", "sweep.py", "task.py", "toy_model.py",
             "training.py")


def source_digest() -> str:
    """The code a superposition run's numbers come from."""
    digest = hashlib.sha256()
    for name in COMPUTING:
        digest.update(name.encode() + (ROOT / "tasks" / "superposition" / name).read_bytes())
    return digest.hexdigest()[:16]


class StageCheckpoint:
    """Where one stage's training saves its state (`due` every `every_s` seconds) and finds it again.
    It also keeps the stage's time: wall and CPU seconds of this process, plus what the saved state
    says earlier processes spent up to their last save (time between that save and a kill is lost)."""

    def __init__(self, path: Path, every_s: float = SAVE_EVERY_S):
        self.path, self.every_s, self._last = path, every_s, time.monotonic()
        self._before = {"seconds": 0.0, "cpu_seconds": 0.0}
        self._since = (time.monotonic(), time.process_time())

    def load(self) -> dict | None:
        if not self.path.exists():
            return None
        state = _load(self.path)
        self._before = dict(state["elapsed"])
        return state

    def due(self) -> bool:
        return time.monotonic() - self._last >= self.every_s

    def elapsed(self) -> dict:
        wall, cpu = self._since
        return {"seconds": self._before["seconds"] + time.monotonic() - wall,
                "cpu_seconds": self._before["cpu_seconds"] + time.process_time() - cpu}

    def save(self, state: dict) -> None:
        _atomic_save({**state, "elapsed": self.elapsed()}, self.path)
        self._last = time.monotonic()


class ResumableRun:
    def __init__(self, folder: Path, fingerprint: dict, every_s: float = SAVE_EVERY_S, finished: Path | None = None):
        """`folder`: the stage in progress (machine-local); `finished`: the finished stages (committable;
        None keeps them in `folder` too). Both are checked against the fingerprint before either is
        written, so a refused run leaves nothing behind."""
        self.folder, self.finished, self.every_s = folder, finished or folder, every_s
        self.time_by_stage: dict[str, dict] = {}
        # As JSON reads it back (tuples become lists), so a saved fingerprint compares equal to its own.
        # The thread count is in it: a float sum over other threads moves the fourth decimal.
        fingerprint = json.loads(json.dumps({**fingerprint, "source": source_digest(), "torch": torch.__version__,
                                             "threads": torch.get_num_threads()}))
        self.key = hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:16]
        places = list(dict.fromkeys((self.finished, self.folder)))
        for where in places:
            _check_fingerprint(where, fingerprint, places)
        for where in places:
            ensure_writable(where, fix="make it writable, or point MOEXBENCH_RESULTS (finished stages) or "
                                       "MOEXBENCH_RUNS (the stage in progress) elsewhere")  # now, not hours later
            if not (where / "fingerprint.json").exists():
                atomic_write_text(where / "fingerprint.json", json.dumps(fingerprint, indent=1, sort_keys=True) + "\n")

    def stage(self, name: str, generator: torch.Generator, run: Callable[[StageCheckpoint], list]) -> list:
        """`run(checkpoint)` -> the stage's records, or those of an earlier process that finished it
        (the generator then set to where that stage left it)."""
        done = self.finished / f"{name}.done.json"
        if done.exists():
            saved = _read_done(done, self.key)
            generator.set_state(saved["generator"])
            self.time_by_stage[name] = saved["elapsed"]
            print(f"superposition: stage {name} finished earlier, read from {done}", flush=True)
            return saved["records"]
        state = self.folder / f"{name}.state.pt"
        if state.exists():
            print(f"superposition: stage {name} resumes from {state}", flush=True)
        checkpoint = StageCheckpoint(state, self.every_s)
        records = run(checkpoint)
        self.time_by_stage[name] = checkpoint.elapsed()
        _write_done(done, records, generator.get_state(), self.time_by_stage[name], self.key)
        state.unlink(missing_ok=True)
        return records

    def time_spent(self) -> dict:
        """Wall and CPU seconds of the run's training, summed over its stages, with each stage's."""
        times = self.time_by_stage.values()
        return {"seconds": sum(t["seconds"] for t in times), "cpu_seconds": sum(t["cpu_seconds"] for t in times),
                "by_stage": self.time_by_stage,
                "note": "each stage's training in every process that ran it, up to its last save before a kill; "
                        "evaluation outside the stages is left out"}

    def finish(self) -> None:
        for where in (self.folder, self.finished):
            shutil.rmtree(where, ignore_errors=True)
        if self.finished != self.folder:
            try:  # the `unfinished/` folder too, once no other run's stages are in it
                self.finished.parent.rmdir()
            except OSError:
                pass


def _stage_files(folder: Path) -> list[Path]:
    return sorted([*folder.glob("*.done.json"), *folder.glob("*.state.pt")]) if folder.is_dir() else []


def _check_fingerprint(where: Path, fingerprint: dict, places: list[Path]) -> None:
    """Refuses a partial run in `where` that was started otherwise, or whose stage files have lost the
    fingerprint that says what they were computed with."""
    start_over = f"delete {' and '.join(str(p) for p in places if p.exists())} to start the run over"
    path = where / "fingerprint.json"
    if not path.exists():
        if _stage_files(where):
            raise BenchError(f"{where} holds finished or saved stages but no fingerprint.json, so what they were "
                             f"computed with is unknown; {start_over}")
        return
    try:
        saved = json.loads(path.read_text())
    except ValueError:
        raise BenchError(f"{path} is damaged; {start_over}") from None
    differ = _differences(saved, fingerprint)
    if differ:
        why = " (source: the code of tasks/superposition that computes numbers)" if differ[0].startswith("source") \
            else ""
        raise BenchError(f"the partial run in {where} was started with another {differ[0]}{why}; {start_over}, "
                         f"or run with what it was started with")


def _write_done(path: Path, records: list, generator_state: torch.Tensor, elapsed: dict, key: str) -> None:
    """JSON, not a pickle: records are plain numbers and Python writes floats that read back exactly.
    `key` is the run's fingerprint hash: a stage file copied in from another run is refused."""
    state = base64.b64encode(generator_state.numpy().tobytes()).decode()
    atomic_write_text(path, json.dumps({"fingerprint": key, "records": records, "generator": state,
                                        "elapsed": elapsed}) + "\n")


def _read_done(path: Path, key: str) -> dict:
    unreadable = f"finished stage {path} is unreadable ({{}}); delete it to redo that stage"
    try:  # written whole by this module: damage came from outside
        saved = json.loads(path.read_text())
        saved["generator"] = torch.frombuffer(bytearray(base64.b64decode(saved["generator"], validate=True)),
                                              dtype=torch.uint8)
        torch.Generator().set_state(saved["generator"])  # a state of the wrong size fails here, not mid-run
        if not isinstance(saved["records"], list) or not all(
                isinstance(saved["elapsed"][k], (int, float)) for k in ("seconds", "cpu_seconds")):
            raise TypeError
        made_with = saved["fingerprint"]
    except (ValueError, KeyError, TypeError, RuntimeError) as e:
        raise BenchError(unreadable.format(type(e).__name__)) from None
    if made_with != key:
        raise BenchError(f"finished stage {path} was computed by a run with other settings or code than its "
                         f"folder's fingerprint.json; delete it to redo that stage")
    return saved
