"""Dictionary fits that survive being killed: SAEs (SAELens's trainer) and transcoders (our own loop).

Every few minutes of training a fit saves what it needs to go on and how many activation batches it
has read. A rerun of the same fit (same record: settings, site, width, seed, model weights, SAELens
version) loads that, skips the batches already read, and ends with the dictionary an unbroken fit
gives, bit for bit (tests/test_sae_resume.py, tests/test_transcoder_resume.py).
- `FitCheckpoints` (SAEs): SAELens's own `save_trainer_state` (optimizer, learning-rate and
  coefficient schedules, step counters, firing statistics, the activation scaler) and the SAE's raw
  parameters.
- `LoopCheckpoints` (a loop of ours, one batch per step): the module's parameters, the optimiser's
  state, the tensors the loop carries from step to step (firing counters) and the step.

A state saved for another record, or one that cannot be read, is removed with a line saying so and the
fit starts over. A state that was read but fails to load into the trainer (or the module and optimiser),
which it changes as it loads, is removed too, and the run stops in one line: going on from a half-loaded
fit would give neither the unbroken fit nor a fresh one.

Layout: `<folder>/step-<n>/` for the newest complete state, written as `step-<n>.partial/` and renamed,
so a kill during a save leaves the previous state usable.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import load_file, save_file

from core.errors import BenchError

SAVE_EVERY_S = 300.0
_PREFIX = "step-"
_MARKER = "moexbench_resume.json"  # a state is complete once this is written


class _SavedStates:
    """The folder of saved states both kinds of fit share: the newest complete one, writing one
    atomically, and removing them all."""

    LABEL = "fit"  # how its lines name the fit

    def __init__(self, folder: Path, record: dict, every_s: float | None = None):
        import sae_lens

        self.folder, self.every_s = folder, SAVE_EVERY_S if every_s is None else every_s
        # through JSON once, so it compares equal to the copy a saved state holds
        self.record = json.loads(json.dumps({**record, "sae_lens": sae_lens.__version__}))
        self._last = time.monotonic()

    def _complete(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        found = [p for p in self.folder.iterdir() if p.is_dir() and p.name.startswith(_PREFIX)
                 and p.name[len(_PREFIX):].isdigit() and (p / _MARKER).exists()]
        return sorted(found, key=lambda p: int(p.name[len(_PREFIX):]))

    def _restore(self, read: Callable[[Path, dict], object], apply: Callable[[object], int]) -> int:
        """`apply(read(state, marker))` for the newest state whose record is this fit's; returns what
        apply returns (0 when there is nothing to resume). `read` reads every file and checks every
        field `apply` needs, changing nothing: a state it fails on is removed and the fit starts over."""
        states = self._complete()
        if not states:
            return 0
        state = states[-1]
        try:
            saved = json.loads((state / _MARKER).read_text(encoding="utf-8"))
            if saved["record"] != self.record:
                why = "is for other settings, site, model or SAELens version"
            else:
                data = read(state, saved)
                why = None
        except Exception as e:  # noqa: BLE001 - a damaged state (power loss, a hand edit) is only lost time
            why = f"is unreadable ({type(e).__name__})"
        if why:
            print(f"{self.LABEL}: the saved state at {state} {why}; starting over", flush=True)
            self.finish()
            return 0
        try:
            return apply(data)
        except Exception as e:  # noqa: BLE001
            self.finish()
            said = " ".join(str(e).split())[:120]  # one line
            raise BenchError(f"{self.LABEL}: the saved state at {state} failed to load ({type(e).__name__}: {said}) "
                             f"and is removed; run the same command again to start the fit over") from None

    def _time_due(self) -> bool:
        return time.monotonic() - self._last >= self.every_s

    def _write(self, step: int, write_files: Callable[[Path], None], meta: dict) -> None:
        """A state for `step`: `write_files(folder)` fills a fresh folder, then the marker (record and
        `meta`) is written and the folder renamed into place; older states are removed."""
        state = self.folder / f"{_PREFIX}{step}"
        if (state / _MARKER).exists():  # just resumed from it: nothing new to keep
            return
        for partial in self.folder.glob("*.partial"):  # what earlier saves killed midway left
            shutil.rmtree(partial, ignore_errors=True)
        partial = state.with_name(state.name + ".partial")
        partial.mkdir(parents=True, exist_ok=True)
        write_files(partial)
        # written last: a folder without it is not a state
        (partial / _MARKER).write_text(json.dumps({"record": self.record, **meta}) + "\n")
        shutil.rmtree(state, ignore_errors=True)  # only a half-removed one, without its marker, can be here
        partial.rename(state)
        for older in self._complete()[:-1]:
            _remove(older)
        self._last = time.monotonic()

    def finish(self) -> None:
        """Removes every saved state: called once the fitted dictionary is saved where it belongs."""
        if self.folder.exists():
            gone = self.folder.with_name(self.folder.name + ".removing")
            shutil.rmtree(gone, ignore_errors=True)
            self.folder.rename(gone)  # at once: a kill during the removal leaves no state half removed
            shutil.rmtree(gone, ignore_errors=True)


class FitCheckpoints(_SavedStates):
    """The saved states of an SAE fit by SAELens's `SAETrainer` (bench/sae_training.train_sae)."""

    LABEL = "SAE fit"

    def restore(self, trainer) -> int:
        """Loads the newest saved state into `trainer` (and its SAE); returns the activation batches the
        fit had read by then (0 when there is nothing to resume)."""
        def read(state: Path, saved: dict):
            from sae_lens.constants import ACTIVATION_SCALER_CFG_FILENAME, TRAINER_STATE_FILENAME

            # the trainer's own files too, so that a damaged one is found before the trainer changes
            json.loads((state / ACTIVATION_SCALER_CFG_FILENAME).read_text(encoding="utf-8"))
            torch.load(state / TRAINER_STATE_FILENAME, map_location="cpu", weights_only=True)
            return state, load_file(str(state / "sae_parameters.safetensors")), int(saved["batches_read"])

        def apply(data) -> int:
            state, parameters, batches_read = data
            trainer.load_trainer_state(state)
            trainer.sae.load_state_dict(parameters)
            print(f"{self.LABEL}: resuming at step {trainer.n_training_steps} from {state}", flush=True)
            return batches_read

        return self._restore(read, apply)

    def saving(self, trainer, stream, batches_read: int):
        """`stream`, saving the fit's state every `every_s` seconds between two training steps. When the
        trainer asks for a batch, its previous step is complete, the batch is not yet read, and the next
        step's sparsity-window reset (SAETrainer.maybe_reset_sparsity) has already run."""
        for batch in stream:
            if self._due(trainer):
                self._save(trainer, batches_read)
            batches_read += 1
            yield batch

    def _due(self, trainer) -> bool:
        step = trainer.n_training_steps
        # Step 0 is still the norm estimate's (no activation scaler to save yet). At a sparsity-window
        # step the statistics were just reset, and a resume would reset them again and divide 0 by 0
        # in SAELens's sparsity log: save one step later.
        return step > 0 and step % trainer.cfg.feature_sampling_window != 0 and self._time_due()

    def _save(self, trainer, batches_read: int) -> None:
        def write_files(folder: Path) -> None:
            trainer.save_trainer_state(folder)
            save_file(_on_cpu(trainer.sae.state_dict()), str(folder / "sae_parameters.safetensors"))

        self._write(trainer.n_training_steps, write_files, {"batches_read": batches_read})


class LoopCheckpoints(_SavedStates):
    """The saved states of a training loop of ours that reads one batch per step (the transcoder's,
    bench/transcoder_training.py): after `step` steps it has read `step` batches."""

    LABEL = "transcoder fit"

    def restore(self, module: torch.nn.Module, optimiser: torch.optim.Optimizer,
                carried: dict[str, torch.Tensor]) -> int:
        """Loads the newest saved state into `module`, `optimiser` and, in place, the `carried` tensors;
        returns the steps done (0 when there is nothing to resume)."""
        def read(state: Path, saved: dict):
            tensors = load_file(str(state / "carried.safetensors"))
            if tensors.keys() != carried.keys():
                raise KeyError(f"carried tensors {sorted(tensors)}, expected {sorted(carried)}")
            # Adam's load_state_dict moves its state to each parameter's device
            return (state, int(saved["step"]), load_file(str(state / "parameters.safetensors")),
                    torch.load(state / "optimiser.pt", map_location="cpu", weights_only=True), tensors)

        def apply(data) -> int:
            state, step, parameters, optimiser_state, tensors = data
            module.load_state_dict(parameters)
            optimiser.load_state_dict(optimiser_state)
            for name, tensor in carried.items():
                tensor.copy_(tensors[name])
            print(f"{self.LABEL}: resuming at step {step} from {state}", flush=True)
            return step

        return self._restore(read, apply)

    def maybe_save(self, step: int, module: torch.nn.Module, optimiser: torch.optim.Optimizer,
                   carried: dict[str, torch.Tensor]) -> None:
        """Saves the state after `step` steps when `every_s` seconds have passed since the last save
        (never at step 0, which holds nothing to keep). Call it between two steps."""
        if step == 0 or not self._time_due():
            return

        def write_files(folder: Path) -> None:
            save_file(_on_cpu(module.state_dict()), str(folder / "parameters.safetensors"))
            torch.save(optimiser.state_dict(), folder / "optimiser.pt")
            save_file(_on_cpu(carried), str(folder / "carried.safetensors"))

        self._write(step, write_files, {"step": step})


def _on_cpu(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}


def _remove(state: Path) -> None:
    (state / _MARKER).unlink(missing_ok=True)  # first: from here on it is not a state
    shutil.rmtree(state, ignore_errors=True)
