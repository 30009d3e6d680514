"""Metric declarations: each task says once what its metrics mean, which way is better and what range a
value may take. Reports take their columns and descriptions from here, results are checked against it,
and the compact table `make bench` prints is built from the headline metrics."""

from __future__ import annotations

import fnmatch
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
    # Added after results were committed: a seed scored before lacks it, and seed statistics leave it out
    # for that model (rather than refuse, or average fewer seeds than the row says) until every seed has it.
    added_later: bool = False

    def check(self, value: float) -> str | None:
        """Why a value cannot be this metric, or None."""
        if not self.low <= value <= self.high:
            return f"{value!r} is outside [{self.low:g}, {self.high:g}]"
        return None


# Written by the harness for every task that splices features in (core/fidelity.py) or routes tokens
# (adapters/moe.py), whatever the task.
SPLICE_AND_ROUTER = (
    Metric("ce_clean", "validation cross-entropy of the model (nats per token)", False, 0.0),
    Metric("ce_zero_ablation", "the same with the site's activation set to zero", None, 0.0),
    Metric("ce_splice", "the same with the features' reconstruction spliced in", False, 0.0),
    Metric("mostly_dead", "1 when more than half the features never fire on the validation tokens, else 0",
           False, 0.0, 1.0),
    Metric("router_collapsed", "1 when an MoE router's k busiest experts take >= 90% of assignments, else 0",
           False, 0.0, 1.0),
)


def declared(task: str) -> tuple[Metric, ...]:
    """A task's declarations (tasks/<task>/metric_defs.py: METRICS); none for a task that has not any."""
    module = f"tasks.{task}.metric_defs"
    try:
        return importlib.import_module(module).METRICS
    except ModuleNotFoundError as e:
        if e.name not in (module, f"tasks.{task}"):  # a missing import inside the declarations is a bug
            raise
        return ()


def by_name(task: str) -> dict[str, Metric]:
    return {m.name: m for m in declared(task)}


def lookup(task: str, name: str) -> Metric | None:
    """The declaration of a metric: by its name, or by a family `prefix_*` (one metric per toy
    configuration, say) that it belongs to."""
    table = by_name(task)
    if name in table:
        return table[name]
    return next((m for m in table.values() if m.name.endswith("*") and fnmatch.fnmatchcase(name, m.name)), None)


def unit_range(name: str, description: str, **kw) -> Metric:
    return Metric(name, description, low=0.0, high=1.0, **kw)
