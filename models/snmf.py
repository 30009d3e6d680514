"""Semi-nonnegative matrix factorisation of activations (Ding, Li & Jordan 2010, "Convex and
semi-nonnegative matrix factorizations", TPAMI 32(1)), as Shafran et al. 2025 (arXiv 2506.10920) apply
it to MLP hidden units: X (d x n, one column per token) ~ F G^T, with F (d x k) of any sign, each column
a feature's weights over the neurons, and G (n x k) >= 0, the features' codes.

Fitting alternates Ding et al.'s two updates, each of which does not increase ||X - F G^T||^2:
    F = X G (G^T G)^-1                                          (least squares, exact)
    G <- G * sqrt(((X^T F)+ + G (F^T F)-) / ((X^T F)- + G (F^T F)+))   (multiplicative, keeps G >= 0)
with A+ = (|A| + A) / 2 and A- = (|A| - A) / 2.

Encoding a new token x with F fixed is the same objective's convex part, min_{g >= 0} ||x - F g||^2
(non-negative least squares). It is solved by accelerated projected gradient (FISTA, step 1 / the
largest eigenvalue of F^T F, from g = 0), which sets a code exactly to 0 where the solution lies on that
boundary; Ding's multiplicative update only approaches 0, so every code would count as active. When F
is nearly singular (k as large as d) the solution is not unique and a fixed number of steps stops
short of the optimum: the codes found are then one of many, and dense. Shafran et al.'s winner-take-all sparsity on F is not
applied: F is Ding et al.'s.
"""

from __future__ import annotations

import torch

RIDGE = 1e-6  # relative to G^T G's mean diagonal: keeps the F solve defined when a code column dies
FLOOR = 1e-12  # keeps the multiplicative update's denominator from vanishing


def _pos(a: torch.Tensor) -> torch.Tensor:
    return (a.abs() + a) / 2


def _neg(a: torch.Tensor) -> torch.Tensor:
    return (a.abs() - a) / 2


def objective(x: torch.Tensor, f: torch.Tensor, g: torch.Tensor) -> float:
    """||X - F G^T||^2 for x (n, d) rows as tokens (the transpose of the docstring's X), summed in float64."""
    return (x - g @ f.T).double().pow(2).sum().item()


def update_f(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    gram = g.T @ g
    gram = gram + RIDGE * gram.diagonal().mean().clamp_min(FLOOR) * torch.eye(len(gram), dtype=gram.dtype,
                                                                               device=gram.device)
    return torch.linalg.solve(gram.double(), (g.T @ x).double()).T.to(x.dtype)  # (d, k): F = X G (G^T G)^-1


def update_g(x: torch.Tensor, f: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    xf, ff = x @ f, f.T @ f  # X^T F (n, k), F^T F (k, k)
    return g * ((_pos(xf) + g @ _neg(ff)) / (_neg(xf) + g @ _pos(ff)).clamp_min(FLOOR)).sqrt()


def fit(x: torch.Tensor, k: int, iterations: int, seed: int, on_step=None) -> torch.Tensor:
    """F (d, k) for activations x (n, d), in float32 (float64 is 3 times slower here and the fit is the
    cost of this baseline). G starts uniform in (0, 1] times the data's scale, F from it;
    `on_step(i, objective)` after each pair of updates."""
    x = x.float()
    gen = torch.Generator().manual_seed(seed)
    g = (torch.rand(len(x), k, generator=gen) + 1e-3) * x.abs().mean()
    f = update_f(x, g)
    for i in range(iterations):
        g = update_g(x, f, g)
        f = update_f(x, g)
        if on_step is not None:
            on_step(i, objective(x, f, g))
    return f


def encode(x: torch.Tensor, f: torch.Tensor, iterations: int) -> torch.Tensor:
    """Codes g >= 0 minimising ||x - F g||^2 for each row of x (..., d): (..., k), in x's dtype."""
    shape, dtype = x.shape, x.dtype
    rows = x.reshape(-1, shape[-1]).to(f.dtype)
    gram, target = f.T @ f, rows @ f
    step = 1.0 / torch.linalg.eigvalsh(gram)[-1].clamp_min(FLOOR)
    g = torch.zeros(len(rows), f.shape[1], dtype=f.dtype, device=f.device)
    y, t = g, 1.0
    for _ in range(iterations):
        g_next = (y - step * (y @ gram - target)).clamp_min(0)
        t_next = (1 + (1 + 4 * t * t) ** 0.5) / 2
        y = g_next + ((t - 1) / t_next) * (g_next - g)
        g, t = g_next, t_next
    return g.reshape(*shape[:-1], f.shape[1]).to(dtype)


def decode(codes: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    return (codes.to(f.dtype) @ f.T).to(codes.dtype)
