"""The two ways this repository times code: one function alone (median of repeats after warm-up),
or several taking turns (interleaved and rotated, so that a change in the machine's load during the
run falls on all of them alike: timed one after another, moe once measured 1.27x switch;
interleaved, the two were equal within noise)."""

from __future__ import annotations

import statistics
import time


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median_seconds(fn, repeats: int = 7, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    return statistics.median(seconds(fn) for _ in range(repeats))


def interleaved_seconds(steps: dict, repeats: int = 15, warmup: int = 3) -> dict:
    """Median seconds of each of `steps` (name -> function), the functions taking turns, rotated so
    that none always goes first."""
    names = list(steps)
    for fn in steps.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in names}
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            times[name].append(seconds(steps[name]))
    return {name: statistics.median(t) for name, t in times.items()}
