"""Metric declarations: each task says once what its metrics mean, which way is better and what range a
value may take. Reports take their columns and descriptions from here, results are checked against it,
and the compact table `make bench` prints is built from the headline metrics."""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    name: str
    description: str
    higher_is_better: bool | None = True   # None: neither way is better (a size, a count, a share)
    low: float = -math.inf
    high: float = math.inf
    headline: bool = False                 # in the compact table that `make bench` and `make report` print
    floor: str | None = None               # the metric holding this one's random-init floor
    ceiling: str | None = None             # the metric holding this one's ceiling (the linear probe)
    spread: bool = False                   # shown as mean +- std over seeds in the summary

    def check(self, value: float) -> str | None:
        """Why a value cannot be this metric, or None."""
        if not self.low <= value <= self.high:
            return f"{value!r} is outside [{self.low:g}, {self.high:g}]"
        return None


def declared(task: str) -> tuple[Metric, ...]:
    """A task's declarations (tasks/<task>/metric_defs.py: METRICS); none for a task that has not any."""
    try:
        return importlib.import_module(f"tasks.{task}.metric_defs").METRICS
    except ModuleNotFoundError:
        return ()


def by_name(task: str) -> dict[str, Metric]:
    return {m.name: m for m in declared(task)}


def unit_range(name: str, description: str, **kw) -> Metric:
    return Metric(name, description, low=0.0, high=1.0, **kw)
