"""Superposition sweeps per preset (docs/superposition.md section 4; the reference's demo and specialisation
notebooks): n features, a dense width, MoE configurations of equal total width, densities, seeds."""

from __future__ import annotations

from dataclasses import dataclass


def reference_densities(count: int = 30) -> tuple:
    """The reference's grid: 1.0 down to 0.1 in even steps, rounded to 2 decimals."""
    return tuple(round(1.0 - i * 0.9 / (count - 1), 2) for i in range(count))


@dataclass(frozen=True)
class Specialisation:
    """Their Table 1: n = 100, E = 10 experts of m = 10, top-1, density 0.1, importance 0.9^perm(i)."""
    n_features: int = 100
    n_experts: int = 10
    d_expert: int = 10
    top_k: int = 1
    density: float = 0.1
    models_per_init: int = 100
    steps: int = 10_000


@dataclass(frozen=True)
class SuperpositionPreset:
    n_features: int
    dense_width: int
    expert_configs: tuple          # (E, m, k), each with E * m = dense_width
    densities: tuple
    seeds: int
    steps: int
    batch: int
    lr: float
    specialisation: Specialisation


PRESETS = {
    "tiny": SuperpositionPreset(n_features=20, dense_width=4, expert_configs=((2, 2, 1), (4, 1, 2)),
                                densities=(1.0, 0.3), seeds=1, steps=150, batch=256, lr=1e-3,
                                specialisation=Specialisation(n_features=20, n_experts=4, d_expert=2, density=0.2,
                                                              models_per_init=2, steps=150)),
    # Every third density of the reference's 30 (1.0 .. 0.16) and its last (0.1), 2 seeds, 1,500 steps
    # of 256: about 150x less training than the reference, what 2 cores do in minutes per model.
    "cpu": SuperpositionPreset(n_features=100, dense_width=20, expert_configs=((4, 5, 1), (10, 2, 2), (20, 1, 5)),
                               densities=reference_densities()[::3] + (0.1,), seeds=2, steps=1500, batch=256, lr=1e-3,
                               specialisation=Specialisation(models_per_init=4, steps=1500)),
    "paper": SuperpositionPreset(n_features=100, dense_width=20, expert_configs=((4, 5, 1), (10, 2, 2), (20, 1, 5)),
                                 densities=reference_densities(), seeds=5, steps=10_000, batch=1024, lr=1e-3,
                                 specialisation=Specialisation()),
}
