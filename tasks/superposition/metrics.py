"""Superposition metrics of docs/superposition.md section 5 on toy-model weights, for a batch of models.

Shapes: W (N, E, n, m) - model, expert, feature, hidden unit; row i of W[n, e] is feature i's
direction in expert e. Reference quirks kept or changed are listed in tasks/superposition/task.py.
"""

from __future__ import annotations

import torch

NORM_EPS = 1e-5  # the reference's W / (1e-5 + |W|)


def features_per_dimension(W: torch.Tensor, usage: torch.Tensor, top_k: int) -> torch.Tensor:
    """(N,): (1/k) sum_e p_e |W_e|_F^2 / m, with p_e the mean routing weight of expert e (summing to 1).
    A dense model (E = 1, k = 1, p = 1) gives |W|_F^2 / m."""
    m = W.shape[-1]
    per_expert = W.pow(2).sum((-2, -1)) / m                  # (N, E)
    return (usage * per_expert).sum(-1) / top_k


def _projections(W: torch.Tensor) -> torch.Tensor:
    """(N, E, n, n): entry [i, j] = W_hat_i . W_j within each expert."""
    W_hat = W / (NORM_EPS + W.norm(dim=-1, keepdim=True))
    return torch.einsum("neih,nejh->neij", W_hat, W)


def feature_dimensionality(W: torch.Tensor) -> torch.Tensor:
    """(N, E, n): D_i = |W_i|^2 / sum_j (W_hat_i . W_j)^2 (j including i). 1: a dimension of its own;
    1/2: an antipodal pair; 0: not represented (the reference divides 0 by 0 there)."""
    norms2 = W.pow(2).sum(-1)
    denominator = _projections(W).pow(2).sum(-1)
    return torch.where(denominator > NORM_EPS ** 2, norms2 / denominator.clamp_min(NORM_EPS ** 2), torch.zeros(()))


def interference(W: torch.Tensor) -> torch.Tensor:
    """(N, E, n): sqrt(sum_{j != i} (W_hat_i . W_j)^2), feature i's overlap with the others in an expert."""
    proj = _projections(W)
    off = proj - torch.diag_embed(torch.diagonal(proj, dim1=-2, dim2=-1))
    return off.pow(2).sum(-1).sqrt()


def monosemantic(W: torch.Tensor, threshold: float, min_norm: float) -> torch.Tensor:
    """(N, E, n) bool: feature i is represented in expert e (norm >= min_norm) with interference
    below the threshold."""
    return (interference(W) < threshold) & (W.norm(dim=-1) >= min_norm)


def allocation(W: torch.Tensor) -> torch.Tensor:
    """(N, E, n): S_i^(e) = |W_i^(e)|^2 / sum_e' |W_i^(e')|^2, where each feature's norm lives."""
    norms2 = W.pow(2).sum(-1)
    return norms2 / norms2.sum(1, keepdim=True).clamp_min(NORM_EPS ** 2)


def activation_given_presence(x: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
    """(N, E, n): alpha_i^(e) = P(expert e chosen | feature i present), from inputs x (N, B, n) and
    the 0/1 choice mask (N, B, E); 0 for a feature that never appeared."""
    present = (x > 0).float()
    together = torch.einsum("nbe,nbi->nei", chosen, present)
    return together / present.sum(1).unsqueeze(1).clamp_min(1.0)


def units_on_when_chosen(x: torch.Tensor, W: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
    """(N,): over every (input, chosen expert) pair, the mean share of that expert's hidden units with a
    positive pre-activation x . W_e[:, h] (the units a ReLU lets through). 0 means every chosen expert is
    silent: its output is its bias alone and its weights get no reconstruction gradient."""
    on = (torch.einsum("nbf,nefh->nbeh", x, W) > 0).float().mean(-1)     # (N, B, E)
    return (on * chosen).sum((1, 2)) / chosen.sum((1, 2)).clamp_min(1.0)


def global_dimensionality(W: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """(N, n): D_i = sum_e alpha_i^(e) D_i^(e)."""
    return (alpha * feature_dimensionality(W)).sum(1)
