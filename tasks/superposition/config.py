"""Settings of the superposition evaluation (each can be overridden with ARGS="key=value ...")."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SuperpositionConfig:
    # A run with other values than the result it would replace is refused before any work
    # (core.results.refuse_other_measurement): these change what the numbers measure.
    MEASUREMENT = ("mono_threshold", "min_norm", "eval_samples")
    # A feature is monosemantic in an expert when sqrt(sum_{j != i} (W_hat_i . W_j)^2) is below this.
    mono_threshold: float = 0.2
    # ... and its norm is at least this ("not ~0" in docs/superposition.md section 8; the reference has no such floor).
    min_norm: float = 0.1
    # Fresh inputs per model for routing usage, alpha and the evaluation loss.
    eval_samples: int = 8192
    # Also run the expert-specialisation experiment (MoE models only). Without it, results go to
    # results/superposition/specialisation.False/ (the main result has its metrics).
    specialisation: bool = True
    # Feature importance of the main sweep, I_i = importance_decay ** i. 1.0 is uniform, the reference's
    # main sweep; uniform importance leaves a dense optimum free to rotate (any 20-dim projection of
    # the 100 features loses the same), so no feature need sit alone in a direction. Below 1, results
    # go to results/superposition/importance-<decay>/.
    importance_decay: float = 1.0

    def __post_init__(self):
        if self.mono_threshold <= 0 or self.min_norm < 0 or self.eval_samples < 1:
            raise ValueError("mono_threshold must be > 0, min_norm >= 0 and eval_samples >= 1")
        if not 0 < self.importance_decay <= 1:
            raise ValueError(f"importance_decay={self.importance_decay} must be in (0, 1]; 1 is uniform importance")
