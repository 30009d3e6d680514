"""Settings of the superposition evaluation (each can be overridden with ARGS="key=value ...")."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SuperpositionConfig:
    # A feature is monosemantic in an expert when sqrt(sum_{j != i} (W_hat_i . W_j)^2) is below this.
    mono_threshold: float = 0.2
    # ... and its norm is at least this ("not ~0" in the spec; the reference has no such floor).
    min_norm: float = 0.1
    # Fresh inputs per model for routing usage, alpha and the evaluation loss.
    eval_samples: int = 8192
    # Also run the expert-specialisation experiment (MoE models only).
    specialisation: bool = True

    def __post_init__(self):
        if self.mono_threshold <= 0 or self.min_norm < 0 or self.eval_samples < 1:
            raise ValueError("mono_threshold must be > 0, min_norm >= 0 and eval_samples >= 1")
