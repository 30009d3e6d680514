"""Is a difference between two models' seed means larger than their seed spread? Welch's t-test
(unequal variances), two-sided, on the per-seed values of one metric."""

from __future__ import annotations

import math
import statistics


def welch(a: list[float], b: list[float]) -> dict | None:
    """mean(a) - mean(b), Welch's t, its Welch-Satterthwaite degrees of freedom and the two-sided p;
    None when either side has fewer than two seeds (no spread to test against). Two sides without
    any spread: t is infinite for a real difference (p 0) and undefined for none (p 1)."""
    if len(a) < 2 or len(b) < 2:
        return None
    from scipy import stats

    diff = statistics.fmean(a) - statistics.fmean(b)
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    if va + vb == 0:
        return {"diff": diff, "t": math.copysign(math.inf, diff) if diff else 0.0, "df": float(len(a) + len(b) - 2),
                "p": 0.0 if diff else 1.0}
    t = diff / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    return {"diff": diff, "t": t, "df": df, "p": float(2 * stats.t.sf(abs(t), df))}


def difference_lines(values: dict[str, list[float]], pairs: list[tuple[str, str]], metric: str) -> list[str]:
    """A markdown table row per pair whose both models have values: difference, t, df, p."""
    rows = []
    for first, second in pairs:
        if first in values and second in values:
            test = welch(values[first], values[second])
            if test is None:
                rows.append(f"| {metric} | {first} - {second} | "
                            f"{statistics.fmean(values[first]) - statistics.fmean(values[second]):+.3f} "
                            f"| - | - | one seed: untested |")
            else:
                rows.append(f"| {metric} | {first} - {second} | {test['diff']:+.3f} | {test['t']:.2f} | "
                            f"{test['df']:.1f} | {test['p']:.3f} |")
    return rows
