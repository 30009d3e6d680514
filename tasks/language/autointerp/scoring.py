"""Scores of one feature's answers, and their summary over features (docs/language.md section 4.6).

Per feature: balanced accuracy = (true-positive rate + true-negative rate) / 2 over the answers that
parsed; a parse failure (None) is left out of both rates and counted apart, never scored as right or
wrong. Per decile: the share of that decile's activating examples answered "fires" (the paper's
Fig. 8), beside the share of non-activating examples answered "does not fire". Over features: the
mean with a percentile bootstrap 95% interval (features resampled with replacement).
"""

from __future__ import annotations

import numpy as np

from tasks.language.autointerp.sampling import N_DECILES


def balanced_accuracy(answers: list[bool | None], labels: list[bool]) -> float | None:
    """None when the parsed answers hold no positive or no negative example to score."""
    pos = [a for a, y in zip(answers, labels) if y and a is not None]
    neg = [a for a, y in zip(answers, labels) if not y and a is not None]
    if not pos or not neg:
        return None
    return (sum(pos) / len(pos) + sum(not a for a in neg) / len(neg)) / 2


def accuracy_by_decile(answers: list[bool | None], labels: list[bool], deciles: list[int | None]) -> dict:
    """{"0".."9": share of activating examples of the decile answered True, "negative": share of
    non-activating examples answered False}; a group with no parsed answer is absent."""
    groups: dict[str, list[bool]] = {}
    for a, y, d in zip(answers, labels, deciles):
        if a is None:
            continue
        key = str(d) if y else "negative"
        groups.setdefault(key, []).append(a if y else not a)
    order = [str(d) for d in range(N_DECILES)] + ["negative"]
    return {k: sum(groups[k]) / len(groups[k]) for k in order if k in groups}


def bootstrap_mean(values: list[float], n_resamples: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """(mean, 2.5th percentile, 97.5th percentile) of the mean over features resampled with replacement."""
    x = np.asarray(values, dtype=np.float64)
    if len(x) == 0:
        raise ValueError("no scored features to summarise")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(n_resamples, len(x)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(x.mean()), float(low), float(high)
