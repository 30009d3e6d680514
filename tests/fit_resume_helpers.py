"""What the fit-resume tests share (tests/test_sae_resume.py, tests/test_transcoder_resume.py): a fit
that is killed after a given number of saves, the tiny dense model and its training batches, and a
bit-for-bit comparison of two modules."""

import torch

from bench import registry
from bench.model_store import load_or_train


class Killed(Exception):
    pass


def killed_after(kind, folder, record, saves: int):
    """A `kind` (FitCheckpoints or LoopCheckpoints) that saves before every training step after the
    first and is killed right after its `saves`-th save."""
    class Dying(kind):
        def _write(self, *args):
            super()._write(*args)
            self.left -= 1
            if self.left == 0:
                raise Killed

    dying = Dying(folder, record, every_s=0)
    dying.left = saves
    return dying


def tiny_dense_and_batches():
    """The tiny chess dense model and its task's training batches (batch_fn)."""
    task = registry.task("chess")
    model = load_or_train(registry.model_adapter("dense"), task, "tiny", 0, "cpu")[0].model
    return model, task.training_data("tiny", 0).batch_fn


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
