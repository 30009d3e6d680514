"""Which windows a feature is explained from and tested on (docs/language.md sections 4.2-4.4, delphi's protocol).

Input: the feature's maximum activation in every 32-token window of the cached text. A window
"activates" the feature when that maximum is above zero; it is a verified negative when it is not (for
a GELU neuron, whose output is never exactly zero, that means no positive activation anywhere in the
window: random windows are not assumed negative, as SAEBench does). Activating windows are split into
10 deciles of their maximum (quantile bins, 0 weakest); explanation examples are drawn evenly across
the deciles, test examples are drawn per decile from the windows left over, so the scorer never sees
an example the explanation came from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_DECILES = 10


@dataclass(frozen=True)
class SamplingRules:
    n_explain: int = 40              # explanation examples, n_explain / 10 per decile
    n_test_per_decile: int = 5       # activating test examples per decile (50 in all)
    n_negative: int = 50             # verified non-activating test examples
    min_activating: int = 200        # fewer activating windows than this: the feature is skipped
    # "verified": negatives are windows with no positive activation, and a feature without enough is
    # skipped (the protocol). "weakest": such a feature takes the windows of its lowest maxima as
    # negatives instead, flagged per feature; dense GELU neurons fire a little in almost every window,
    # so without this most of them cannot be scored at all. The same rule applies to every model.
    negatives: str = "verified"

    def __post_init__(self):
        if self.negatives not in ("verified", "weakest"):
            raise ValueError(f"negatives {self.negatives!r} unknown; choose verified or weakest")
        if self.n_explain % N_DECILES:
            raise ValueError(f"n_explain must be a multiple of {N_DECILES}, got {self.n_explain}")
        needed = self.n_explain + N_DECILES * self.n_test_per_decile
        if self.min_activating < needed:
            raise ValueError(f"min_activating ({self.min_activating}) must be at least the {needed} activating "
                             f"windows one feature uses (n_explain + 10 x n_test_per_decile)")


@dataclass(frozen=True)
class FeatureSample:
    explain: np.ndarray          # window indices
    explain_deciles: np.ndarray
    test: np.ndarray             # activating test windows
    test_deciles: np.ndarray
    negative: np.ndarray         # non-activating windows
    negatives_verified: bool = True  # False: the feature's weakest windows stand in (rules.negatives)


def decile_of(window_max: np.ndarray, activating: np.ndarray) -> np.ndarray:
    """Decile (0..9) of each activating window by its maximum: equal-count bins of the sorted maxima,
    ties broken by window index so the split is deterministic."""
    order = np.lexsort((activating, window_max[activating]))
    deciles = np.empty(len(activating), dtype=np.int64)
    deciles[order] = np.arange(len(activating)) * N_DECILES // len(activating)
    return deciles


def sample_feature(window_max: np.ndarray, rules: SamplingRules, rng: np.random.Generator) -> FeatureSample | str:
    """The windows for one feature, or the reason it is skipped."""
    activating = np.flatnonzero(window_max > 0)
    negatives = np.flatnonzero(window_max <= 0)
    verified = len(negatives) >= rules.n_negative
    if not verified and rules.negatives == "weakest":
        weakest = np.lexsort((np.arange(len(window_max)), window_max))[:rules.n_negative]
        negatives, activating = weakest, np.setdiff1d(activating, weakest)
    if len(activating) < rules.min_activating:
        return f"{len(activating)} activating windows, fewer than {rules.min_activating}"
    if len(negatives) < rules.n_negative:
        return f"{len(negatives)} windows where it never fires, fewer than the {rules.n_negative} negatives needed"
    deciles = decile_of(window_max, activating)
    per_explain = rules.n_explain // N_DECILES
    explain, explain_dec, test, test_dec = [], [], [], []
    for d in range(N_DECILES):
        members = rng.permutation(activating[deciles == d])
        explain.append(members[:per_explain])
        test.append(members[per_explain:per_explain + rules.n_test_per_decile])
        explain_dec.append(np.full(len(explain[-1]), d))
        test_dec.append(np.full(len(test[-1]), d))
    return FeatureSample(np.concatenate(explain), np.concatenate(explain_dec), np.concatenate(test),
                         np.concatenate(test_dec), np.sort(rng.choice(negatives, rules.n_negative, replace=False)),
                         verified)
