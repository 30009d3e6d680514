"""The allocator setting around the probe fit: it may change where memory comes from, never a value."""

import subprocess
import sys
from pathlib import Path

import pytest

import core.allocator as allocator

# One probe fit whose logits (12,000 x 832 float32, 40 MB) are above glibc's largest adaptive mmap
# threshold, so the setting does change where they come from; printed as the weights' bytes' hash.
FIT = """
import contextlib, hashlib, sys, torch
torch.set_num_threads(1)
import tasks.chess.probe as probe
if sys.argv[1] == "plain":
    probe.reuse_freed_memory = contextlib.nullcontext
gen = torch.Generator().manual_seed(3)
x = torch.randn(12000, 8, generator=gen)
classes = torch.randint(0, 13, (12000, 64), generator=gen)
mean, std, weight, bias = probe.fit_probe(x, classes, max_iter=3)
print(hashlib.sha256(weight.numpy().tobytes() + bias.numpy().tobytes()).hexdigest())
"""


def test_the_probe_fit_is_bit_identical_with_and_without_it():
    # Each in a fresh process: once set, the thresholds stay set for the rest of a process.
    run = lambda mode: subprocess.run([sys.executable, "-c", FIT, mode], capture_output=True, text=True,  # noqa: E731
                                      check=True, cwd=Path(__file__).parents[1]).stdout.strip()
    plain, held = run("plain"), run("held")
    assert len(plain) == 64 and plain == held


class FakeLibc:
    def __init__(self):
        self.calls = []

    def mallopt(self, param, value):
        self.calls.append((param, value))
        return 1

    def malloc_trim(self, pad):
        self.calls.append(("trim", pad))
        return 1


RAISED = [(allocator.M_MMAP_THRESHOLD, allocator.HELD), (allocator.M_TRIM_THRESHOLD, allocator.HELD)]
LOWERED = [(allocator.M_MMAP_THRESHOLD, allocator.AFTER_MMAP), (allocator.M_TRIM_THRESHOLD, allocator.AFTER_TRIM),
           ("trim", 0)]


def test_it_raises_glibcs_thresholds_and_lowers_them_after(monkeypatch):
    libc = FakeLibc()
    monkeypatch.setattr(allocator, "_glibc", lambda: libc)
    with allocator.reuse_freed_memory():
        assert libc.calls == RAISED
    assert libc.calls == RAISED + LOWERED


def test_a_nested_block_leaves_the_setting_to_the_outer_one_and_an_error_still_lowers_it(monkeypatch):
    libc = FakeLibc()
    monkeypatch.setattr(allocator, "_glibc", lambda: libc)
    with pytest.raises(RuntimeError):
        with allocator.reuse_freed_memory():
            with allocator.reuse_freed_memory():
                pass
            assert libc.calls == RAISED  # the inner block's end did not lower them
            raise RuntimeError("inside")
    assert libc.calls == RAISED + LOWERED


def test_without_glibc_it_does_nothing(monkeypatch):
    monkeypatch.setattr(allocator, "_glibc", lambda: None)
    with allocator.reuse_freed_memory():
        pass
