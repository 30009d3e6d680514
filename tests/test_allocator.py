"""The allocator setting around the probe fit: it may change where memory comes from, never a value."""

import contextlib

import torch

import core.allocator as allocator
import tasks.chess.probe as probe


def _fit():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(300, 16, generator=gen)
    classes = torch.randint(0, 13, (300, 64), generator=gen)
    return probe.fit_probe(x, classes, max_iter=10)


def test_the_probe_fit_is_bit_identical_with_and_without_it(monkeypatch):
    held = _fit()
    monkeypatch.setattr(probe, "reuse_freed_memory", contextlib.nullcontext)
    plain = _fit()
    assert all(torch.equal(a, b) for a, b in zip(held, plain))


def test_it_sets_and_then_lowers_glibcs_thresholds(monkeypatch):
    calls = []

    class FakeLibc:
        def mallopt(self, param, value):
            calls.append((param, value))
            return 1

        def malloc_trim(self, pad):
            calls.append(("trim", pad))
            return 1

    monkeypatch.setattr(allocator, "_glibc", lambda: FakeLibc())
    with allocator.reuse_freed_memory():
        assert calls == [(allocator.M_MMAP_THRESHOLD, allocator.HELD), (allocator.M_TRIM_THRESHOLD, allocator.HELD)]
    assert calls[2:] == [(allocator.M_MMAP_THRESHOLD, allocator.AFTER_MMAP),
                         (allocator.M_TRIM_THRESHOLD, allocator.AFTER_TRIM), ("trim", 0)]


def test_without_glibc_it_does_nothing(monkeypatch):
    monkeypatch.setattr(allocator, "_glibc", lambda: None)
    with allocator.reuse_freed_memory():
        pass
