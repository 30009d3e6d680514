"""An SAE fit that survives being killed.

Every few minutes of training, `FitCheckpoints` saves what SAELens's `SAETrainer` needs to go on (its own
`save_trainer_state`: optimizer, learning-rate and coefficient schedules, step counters, firing
statistics, the activation scaler), the SAE's raw parameters, and how many activation batches the fit
has read. A rerun of the same fit (same record: settings, site, width, seed, model weights, SAELens
version) loads that, skips the batches already read, and ends with the SAE an unbroken fit gives, bit
for bit (tests/test_sae_resume.py). A state saved for another record is removed with a line saying so.

Layout: `<folder>/step-<n>/` for the newest complete state, written as `step-<n>.partial/` and renamed,
so a kill during a save leaves the previous state usable.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from safetensors.torch import load_file, save_file

SAVE_EVERY_S = 300.0
_PREFIX = "step-"
_MARKER = "moexbench_resume.json"  # a state is complete once this is written


class FitCheckpoints:
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

    def restore(self, trainer) -> int:
        """Loads the newest saved state into `trainer` (and its SAE); returns the activation batches the
        fit had read by then (0 when there is nothing to resume)."""
        states = self._complete()
        if not states:
            return 0
        state = states[-1]
        try:
            saved = json.loads((state / _MARKER).read_text(encoding="utf-8"))
            if saved["record"] != self.record:
                why = "is for other settings, site, model or SAELens version"
            else:
                trainer.load_trainer_state(state)
                trainer.sae.load_state_dict(load_file(str(state / "sae_parameters.safetensors")))
                print(f"SAE fit: resuming at step {trainer.n_training_steps} from {state}", flush=True)
                return saved["batches_read"]
        except Exception as e:  # noqa: BLE001 - a damaged state (power loss, a hand edit) is only lost time
            why = f"is unreadable ({type(e).__name__})"
        print(f"SAE fit: the saved state at {state} {why}; starting over", flush=True)
        self.finish()
        return 0

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
        return (step > 0 and step % trainer.cfg.feature_sampling_window != 0
                and time.monotonic() - self._last >= self.every_s)

    def _save(self, trainer, batches_read: int) -> None:
        state = self.folder / f"{_PREFIX}{trainer.n_training_steps}"
        if (state / _MARKER).exists():  # just resumed from it: nothing new to keep
            return
        for partial in self.folder.glob("*.partial"):  # what earlier saves killed midway left
            shutil.rmtree(partial, ignore_errors=True)
        partial = state.with_name(state.name + ".partial")
        trainer.save_trainer_state(partial)  # creates the folder
        parameters = {k: v.detach().to("cpu").contiguous().clone() for k, v in trainer.sae.state_dict().items()}
        save_file(parameters, str(partial / "sae_parameters.safetensors"))
        # written last: a folder without it is not a state
        (partial / _MARKER).write_text(json.dumps({"record": self.record, "batches_read": batches_read}) + "\n")
        shutil.rmtree(state, ignore_errors=True)  # only a half-removed one, without its marker, can be here
        partial.rename(state)
        for older in self._complete()[:-1]:
            _remove(older)
        self._last = time.monotonic()

    def finish(self) -> None:
        """Removes every saved state: called once the fitted SAE is saved where it belongs."""
        if self.folder.exists():
            gone = self.folder.with_name(self.folder.name + ".removing")
            shutil.rmtree(gone, ignore_errors=True)
            self.folder.rename(gone)  # at once: a kill during the removal leaves no state half removed
            shutil.rmtree(gone, ignore_errors=True)


def _remove(state: Path) -> None:
    (state / _MARKER).unlink(missing_ok=True)  # first: from here on it is not a state
    shutil.rmtree(state, ignore_errors=True)
