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
                 and p.name[len(_PREFIX):].isdigit() and (p / "moexbench_resume.json").exists()]
        return sorted(found, key=lambda p: int(p.name[len(_PREFIX):]))

    def restore(self, trainer) -> int:
        """Loads the newest saved state into `trainer` (and its SAE); returns the activation batches the
        fit had read by then (0 when there is nothing to resume)."""
        states = self._complete()
        if not states:
            return 0
        state = states[-1]
        saved = json.loads((state / "moexbench_resume.json").read_text(encoding="utf-8"))
        if saved["record"] != self.record:
            print(f"SAE fit: the saved state at {state} is for other settings, site, model or SAELens version; "
                  f"starting over", flush=True)
            self.finish()
            return 0
        trainer.load_trainer_state(state)
        trainer.sae.load_state_dict(load_file(str(state / "sae_parameters.safetensors")))
        print(f"SAE fit: resuming at step {trainer.n_training_steps} from {state}", flush=True)
        return saved["batches_read"]

    def saving(self, trainer, stream, batches_read: int):
        """`stream`, saving the fit's state every `every_s` seconds between two training steps: when the
        trainer asks for a batch, its previous step is complete and the batch not yet read."""
        for batch in stream:
            if trainer.n_training_steps > 0 and time.monotonic() - self._last >= self.every_s:
                self._save(trainer, batches_read)
            batches_read += 1
            yield batch

    def _save(self, trainer, batches_read: int) -> None:
        state = self.folder / f"{_PREFIX}{trainer.n_training_steps}"
        partial = state.with_name(state.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        trainer.save_trainer_state(partial)  # creates the folder
        parameters = {k: v.detach().to("cpu").contiguous().clone() for k, v in trainer.sae.state_dict().items()}
        save_file(parameters, str(partial / "sae_parameters.safetensors"))
        # written last: a folder without it is not a state
        (partial / "moexbench_resume.json").write_text(json.dumps({"record": self.record,
                                                                   "batches_read": batches_read}) + "\n")
        shutil.rmtree(state, ignore_errors=True)
        partial.rename(state)
        for older in self._complete()[:-1]:
            shutil.rmtree(older, ignore_errors=True)
        self._last = time.monotonic()

    def finish(self) -> None:
        """Removes every saved state: called once the fitted SAE is saved where it belongs."""
        shutil.rmtree(self.folder, ignore_errors=True)

