"""Is a difference between two models' seed means larger than their seed spread? Welch's t-test
(unequal variances, unpaired: the seeds of two models are independent draws), two-sided, on the
per-seed values of one metric; and Holm's adjustment of a table's p-values for the number of tests in it."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass


def welch(a: list[float], b: list[float]) -> dict | None:
    """mean(a) - mean(b), Welch's t, its Welch-Satterthwaite degrees of freedom and the two-sided p;
    None when either side has fewer than two seeds, or neither side has any spread: there is no spread
    to test against (t would be infinite for any difference, rounding included, and df undefined)."""
    if len(a) < 2 or len(b) < 2:
        return None
    from scipy import stats

    diff = statistics.fmean(a) - statistics.fmean(b)
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    if va + vb == 0:
        return None
    t = diff / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    return {"diff": diff, "t": t, "df": df, "p": float(2 * stats.t.sf(abs(t), df))}


def holm(pvalues: list[float]) -> list[float]:
    """Holm's step-down adjustment, in the input's order: the i-th smallest of m p-values times
    (m - i + 1), made non-decreasing in that order and capped at 1. A difference whose adjusted p is
    below 0.05 stays below it whichever of the m tests it was, as the family's error rate needs."""
    order = sorted(range(len(pvalues)), key=lambda i: pvalues[i])
    adjusted, running = [0.0] * len(pvalues), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(pvalues) - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


@dataclass
class Difference:
    metric: str
    first: str
    second: str
    n: tuple[int, int]      # seeds on each side
    diff: float | None      # mean(first) - mean(second), None where one side has no values of the metric
    test: dict | None       # welch()'s, None when untested
    untested: str = ""      # why, when untested


def differences(values: dict[str, list[float]], pairs: list[tuple[str, str]], metric: str) -> list[Difference]:
    """One Difference per pair whose both models have values of `metric` (see untested_pairs for the
    pairs where one lacks them)."""
    rows = []
    for first, second in pairs:
        if first not in values or second not in values:
            continue
        a, b = values[first], values[second]
        test = welch(a, b)
        why = "" if test else ("one seed" if min(len(a), len(b)) < 2 else "no spread on either side")
        rows.append(Difference(metric, first, second, (len(a), len(b)),
                               statistics.fmean(a) - statistics.fmean(b), test, why))
    return rows


def untested_pairs(pairs: list[tuple[str, str]], ran: dict[str, list[float]], have: set[str], metric: str,
                   why: str) -> list[Difference]:
    """Rows for the pairs whose both models ran (`ran`: their values of another metric, for the seed
    counts) while one lacks the values (`have` does not hold it): said as untested, with `why`, so a
    missing comparison is seen rather than silently absent."""
    return [Difference(metric, a, b, (len(ran[a]), len(ran[b])), None, None, why) for a, b in pairs
            if a in ran and b in ran and not (a in have and b in have)]


TABLE_HEADER = ["| metric | difference | seeds | mean gap | t | df | p | p, Holm |",
                "|---|---|---|---|---|---|---|---|"]


def difference_table(rows: list[Difference]) -> list[str]:
    """The rows as markdown under TABLE_HEADER, Holm's adjustment taken over the tested rows of this table."""
    tested = [i for i, r in enumerate(rows) if r.test]
    adjusted = dict(zip(tested, holm([rows[i].test["p"] for i in tested])))
    lines = []
    for i, r in enumerate(rows):
        head = f"| {r.metric} | {r.first} - {r.second} | {r.n[0]} / {r.n[1]} | " + \
            ("-" if r.diff is None else f"{r.diff:+.3f}")
        if r.test is None:
            lines.append(f"{head} | - | - | {r.untested}: untested | - |")
        else:
            lines.append(f"{head} | {r.test['t']:.2f} | {r.test['df']:.1f} | {r.test['p']:.3f} | {adjusted[i]:.3f} |")
    return lines
