"""The toy models of docs/superposition.md section 2, many trained at once as one batched module.

Every parameter has a leading "model" axis of size N, so a whole sweep (densities x seeds) is one
set of einsums. Expert e of model n: W[n, e] (features x hidden), output bias b[n, e]:

    reference hidden form ("linear", tied weights):  x_hat_e = ReLU(W_e W_e^T x + b_e)
    ReLU hidden units ("relu", MoE-X's experts):     x_hat_e = ReLU(W_e ReLU(W_e^T x) + b_e)

mixed by top-k routing weights: a learned linear router (softmax, top-k, renormalised over the
chosen k, as the reference), optionally with the Switch load-balancing loss, or MoE-X's
sparsity-aware router (docs/moex.md section 3.3: no router matrix; -erf of each expert's expected
pre-activation z-score from the column statistics of its encoder W_e^T, softmax over the top-k).
The reference decodes every input with every expert and weights the unchosen ones 0
(`forward_every_expert`, kept as the straightforward version the tests compare against). `forward`
decodes only the k chosen experts, in one batched matrix product per model: each chosen expert's
hidden code is placed in a one-hot slot of the concatenated decoder [W_1 .. W_E | b], so no
per-expert padding is needed however unevenly the router spreads the inputs. The product does more
multiply-adds than the every-expert form (the zero slots; 10x at E=20, m=1, k=5), but it never
builds the (N, E, B, n) tensor of every expert's output, whose memory traffic dominated: 3.5-6.5x
faster per step at the reference's shapes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

HIDDEN_FORMS = ("linear", "relu")
ROUTERS = ("learned", "switch", "sparsity")


@dataclass(frozen=True)
class ToySpec:
    n_features: int
    n_experts: int
    d_expert: int          # hidden units per expert (m)
    top_k: int
    hidden: str = "linear"
    router: str = "learned"
    aux_loss_coef: float = 0.0
    stat_eps: float = 1e-6

    def __post_init__(self):
        if not 1 <= self.top_k <= self.n_experts:
            raise ValueError(f"top_k must be between 1 and n_experts ({self.n_experts}), got {self.top_k}")
        if self.hidden not in HIDDEN_FORMS:
            raise ValueError(f"hidden form {self.hidden!r} unknown; choose one of {', '.join(HIDDEN_FORMS)}")
        if self.router not in ROUTERS:
            raise ValueError(f"router {self.router!r} unknown; choose one of {', '.join(ROUTERS)}")

    @property
    def network_sparsity(self) -> float:
        """1 - active experts / experts (0 for a dense model)."""
        return 1.0 - self.top_k / self.n_experts


class ToyModels(nn.Module):
    def __init__(self, spec: ToySpec, n_models: int, generator: torch.Generator, gate_init: str = "xavier"):
        super().__init__()
        self.spec = spec
        s = spec
        self.W = nn.Parameter(_xavier((n_models, s.n_experts, s.n_features, s.d_expert), generator))
        # The reference Xavier-initialises the output bias too (a (E, n) matrix), not zeros.
        self.b = nn.Parameter(_xavier((n_models, s.n_experts, s.n_features), generator))
        self.gate = None
        if s.router != "sparsity" and s.n_experts > 1:
            gate = _xavier((n_models, s.n_experts, s.n_features), generator)
            if gate_init == "khot":
                gate = k_hot_gate(n_models, s.n_experts, s.n_features, generator)
            elif gate_init != "xavier":
                raise ValueError(f"gate_init {gate_init!r} unknown; choose xavier or khot")
            self.gate = nn.Parameter(gate)

    def router_scores(self, x: torch.Tensor) -> torch.Tensor:
        """(N, B, n) -> (N, B, E); larger = more wanted."""
        if self.gate is not None:
            return torch.einsum("nbf,nef->nbe", x, self.gate)
        mu = self.W.mean(-1)                             # (N, E, n): mean over each expert's hidden units
        var = self.W.var(-1, unbiased=False)
        mu_h = torch.einsum("nbf,nef->nbe", x, mu)       # no encoder bias in the toy experts
        sigma_h = torch.sqrt(torch.einsum("nbf,nef->nbe", x * x, var) + self.spec.stat_eps)
        return -torch.erf(mu_h / (math.sqrt(2.0) * sigma_h))

    def routing(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mixing weights (N, B, E), k non-zero and summing to 1; the chosen experts (N, B, k); and
        the auxiliary loss (N,)."""
        s = self.spec
        if s.n_experts == 1:
            ones = torch.ones(*x.shape[:2], 1, dtype=x.dtype)
            return ones, torch.zeros(*x.shape[:2], 1, dtype=torch.long), torch.zeros(x.shape[0])
        scores = self.router_scores(x)
        top = scores.topk(s.top_k, dim=-1).indices
        chosen = torch.zeros_like(scores).scatter(-1, top, 1.0)
        if s.router == "sparsity":
            # softmax over the top-k scores only
            weights = torch.where(chosen.bool(), scores, torch.full_like(scores, -torch.inf)).softmax(-1)
            return weights, top, torch.zeros(x.shape[0])
        probs = scores.softmax(-1)
        weights = probs * chosen / (probs * chosen).sum(-1, keepdim=True)
        aux = torch.zeros(x.shape[0])
        if s.aux_loss_coef:
            # Switch: alpha * E * sum_e (share of inputs sent to e) * (mean router probability of e)
            aux = s.aux_loss_coef * s.n_experts * (chosen.mean(1) * probs.mean(1)).sum(-1)
        return weights, top, aux

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (N, B, n) -> (x_hat (N, B, n), routing weights (N, B, E), auxiliary loss (N,))."""
        if self.spec.n_experts == 1:
            return self.forward_every_expert(x)
        weights, top, aux = self.routing(x)
        (N, B, _), (E, m, k) = x.shape, (self.spec.n_experts, self.spec.d_expert, self.spec.top_k)
        hidden = torch.einsum("nbf,nefh->nbeh", x, self.W)                 # (N, B, E, m): cheap, m is small
        if self.spec.hidden == "relu":
            hidden = F.relu(hidden)
        chosen = hidden.gather(2, top[..., None].expand(N, B, k, m))       # (N, B, k, m)
        code = torch.cat([chosen, chosen.new_ones(N, B, k, 1)], -1)       # the last channel picks up b_e
        slots = chosen.new_zeros(N, B, k, E, m + 1).scatter(
            3, top[..., None, None].expand(N, B, k, 1, m + 1), code[:, :, :, None, :])
        decoder = torch.cat([self.W, self.b[..., None]], -1).transpose(-1, -2).reshape(N, E * (m + 1), -1)
        outputs = F.relu(torch.bmm(slots.view(N, B * k, E * (m + 1)), decoder)).view(N, B, k, -1)
        return (outputs * weights.gather(2, top)[..., None]).sum(2), weights, aux

    def forward_every_expert(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The reference's form of `forward`: every expert decodes every input."""
        weights, _, aux = self.routing(x)
        hidden = torch.einsum("nbf,nefh->nebh", x, self.W)                 # (N, E, B, m), contiguous per expert
        if self.spec.hidden == "relu":
            hidden = F.relu(hidden)
        outputs = F.relu(hidden @ self.W.transpose(-1, -2) + self.b[:, :, None])   # (N, E, B, n)
        return (outputs * weights.transpose(1, 2)[..., None]).sum(1), weights, aux


def _xavier(shape: tuple, generator: torch.Generator) -> torch.Tensor:
    """Xavier-normal over the last two axes, as torch's xavier_normal_ on each (rows, cols) matrix;
    for a 3-D (N, E, n) tensor the reference's init of an (E, n) matrix per model."""
    fan_out, fan_in = shape[-2], shape[-1]
    if len(shape) == 4:  # (N, E, n, m): torch treats (E, n, m) as E x n "channels" of m -> fans n*m, E*m
        fan_in, fan_out = shape[-2] * shape[-1], shape[-3] * shape[-1]
    std = math.sqrt(2.0 / (fan_in + fan_out))
    return torch.randn(shape, generator=generator) * std


def k_hot_gate(n_models: int, n_experts: int, n_features: int, generator: torch.Generator) -> torch.Tensor:
    """The reference's "k-hot" gate: features shuffled and split evenly over the experts; expert e's
    gate row is 1 on its features and 0 elsewhere."""
    if n_features % n_experts:
        raise ValueError(f"k-hot gate init needs n_features ({n_features}) divisible by n_experts ({n_experts})")
    gate = torch.zeros(n_models, n_experts, n_features)
    for n in range(n_models):
        order = torch.randperm(n_features, generator=generator).view(n_experts, -1)
        for e in range(n_experts):
            gate[n, e, order[e]] = 1.0
    return gate


def sample_features(n_models: int, batch: int, n_features: int, density: torch.Tensor, generator: torch.Generator):
    """x (N, B, n): each feature present with probability density[model], value U[0, 1] when present."""
    values = torch.rand(n_models, batch, n_features, generator=generator)
    present = torch.rand(n_models, batch, n_features, generator=generator) <= density.view(-1, 1, 1)
    return torch.where(present, values, torch.zeros(()))
