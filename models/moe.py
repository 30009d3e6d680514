"""One MoE layer with pluggable parts, used by every MoE model (docs/moex.md sections 1-3).

M experts, each a plain two-matrix MLP (GELU or ReLU) of width D; a router picks k experts per
token and weights them. The layer is one wide MLP of width M*D whose hidden code

    z(x) = [ w_1 sigma(W_enc^(1) x + b^(1)) ; ... ; w_M sigma(W_enc^(M) x + b^(M)) ]

has at most k non-zero blocks; y = [W_dec^(1) | ... | W_dec^(M)] z + b_dec. `hook_post` carries z
as (batch, pos, M*D), so expert units are scored by the same code as dense neurons.

Routers:
- "learned": linear router, softmax over the top-k logits (vanilla top-k MoE);
- "switch": linear router, softmax over all experts, the top-k probabilities as weights, plus the
  Switch auxiliary load-balancing loss alpha * M * sum_j f_j P_j (f_j: expert j's share of the
  assignments, P_j: its mean softmax probability over all experts);
- "sparsity": MoE-X's sparsity-aware router. No router matrix: from the mean and variance of each
  input column of an expert's encoder over its D units, the pre-activation of a random unit is
  approximately N(mu_h, sigma_h^2); g_j = -erf(mu_h / (sqrt(2) sigma_h)) is larger for experts
  expected to fire fewer units; the top-k of g are softmaxed. The statistics are not detached, so
  the gate's gradient reaches the encoders and pushes them towards sparsity.
Any router can take the Switch loss (aux_loss_coef > 0), its P_j the softmax of the router's scores
over all experts (the logits, or g); off by default for all but "switch".

router_input "centred" (ours, not the paper's): the router scores x minus a running mean of x, kept
like BatchNorm's running mean but used in training and evaluation alike: a batch is routed with the
mean as it stood before that batch, which then moves the mean (momentum 0.01), so a token's routing
never depends on the rest of its batch. A component every token shares then moves no expert's score:
otherwise the expert, not the token, decides (docs/moex.md section 7). The experts themselves still
see x.

Dispatch groups the (token, expert) assignments by expert and runs one matrix product per expert:
the work is that of a dense MLP of the active width k*D. The dense z is built only when something
hooks `hook_post` (caching, splicing). A hook that replaces z, or edits it in place, has y computed
from what it returned, so that is what the rest of the model sees; after a hook that only read it,
y is computed as without hooks, so a cache changes no later number (on the CPU bit for bit; on a GPU,
index_add_ is not deterministic anyway). Two edits escape that check: one through `z.data` (or a numpy
view), which bypasses the version counter, and a gradient asked of the read z (`retain_grad`), which
is no longer on the output's path. Replace z instead: return the edited tensor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn

from models.config import GPTConfig
from models.gpt import ACTIVATIONS, MLP_FACTORIES, HookPoint

ROUTERS = ("learned", "switch", "sparsity")
ROUTER_INPUTS = ("raw", "centred")


@dataclass(frozen=True)
class MoEOptions:
    n_experts: int = 8
    top_k: int = 2
    d_expert: int = 0          # 0: d_mlp // top_k, so the active width equals the dense model's
    router: str = "learned"
    aux_loss_coef: float = 0.0
    stat_eps: float = 1e-6     # inside the sparsity router's sqrt
    router_input: str = "raw"  # "centred": x minus its running mean (ours)
    router_input_momentum: float = 0.01

    def __post_init__(self):
        if self.n_experts < 1:
            raise ValueError(f"n_experts must be at least 1, got {self.n_experts}")
        if not 1 <= self.top_k <= self.n_experts:
            raise ValueError(f"top_k must be between 1 and n_experts ({self.n_experts}), got {self.top_k}")
        if self.d_expert < 0:
            raise ValueError(f"d_expert must be positive (or 0 for d_mlp // top_k), got {self.d_expert}")
        if self.router not in ROUTERS:
            raise ValueError(f"router {self.router!r} unknown; choose one of {', '.join(ROUTERS)}")
        if self.aux_loss_coef < 0:
            raise ValueError(f"aux_loss_coef must be 0 or positive, got {self.aux_loss_coef}")
        if self.router_input not in ROUTER_INPUTS:
            raise ValueError(f"router_input {self.router_input!r} unknown; choose one of {', '.join(ROUTER_INPUTS)}")
        if not 0 < self.router_input_momentum <= 1:
            raise ValueError(f"router_input_momentum must be in (0, 1], got {self.router_input_momentum}")


def moe_options(cfg: GPTConfig) -> MoEOptions:
    opts = MoEOptions(**dict(cfg.mlp_options))
    if opts.d_expert == 0:
        if cfg.d_mlp % opts.top_k:
            raise ValueError(f"d_mlp {cfg.d_mlp} does not divide into top_k {opts.top_k} experts; set d_expert")
        opts = MoEOptions(**{**dict(cfg.mlp_options), "d_expert": cfg.d_mlp // opts.top_k})
    return opts


class MoEMLP(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.opts = o = moe_options(cfg)
        m, dx, d = o.n_experts, o.d_expert, cfg.d_model
        self.W_enc = nn.Parameter(torch.randn(m, d, dx) * 0.02)
        self.b_enc = nn.Parameter(torch.zeros(m, dx))
        self.W_dec = nn.Parameter(torch.randn(m, dx, d) * 0.02)  # rescaled by depth in GPT.__init__
        self.b_dec = nn.Parameter(torch.zeros(d))
        self.router = nn.Linear(d, m, bias=False) if o.router != "sparsity" else None
        if o.router_input == "centred":  # a buffer: saved with the weights, never trained by the optimizer
            self.register_buffer("router_input_mean", torch.zeros(d))
        self.act = ACTIVATIONS[cfg.act_fn]
        self.hook_router_scores = HookPoint()  # (batch, pos, M): logits, or g for the sparsity router
        self.hook_chosen = HookPoint()         # (batch, pos, k): chosen expert indices
        self.hook_gate = HookPoint()           # (batch, pos, M): the weights w, zero off the top-k
        self.hook_post = HookPoint()           # (batch, pos, M*D): the wide sparse code z
        self.aux_loss: torch.Tensor | None = None

    def router_scores(self, x: torch.Tensor) -> torch.Tensor:
        """(n, d) -> (n, M): larger = more wanted."""
        if self.router is not None:
            return self.router(x)
        mu = self.W_enc.mean(-1)                          # (M, d): column means over the D units
        var = self.W_enc.var(-1, unbiased=False)          # (M, d): column variances
        mu_h = x @ mu.T + self.b_enc.mean(-1)
        sigma_h = torch.sqrt((x * x) @ var.T + self.opts.stat_eps)
        return -torch.erf(mu_h / (math.sqrt(2.0) * sigma_h))

    def input_for_router(self, flat: torch.Tensor) -> torch.Tensor:
        """What the router scores: x itself, or x minus its running mean; in training the batch then
        moves the mean (after its own routing, so no token's choice depends on its batch)."""
        if self.opts.router_input == "raw":
            return flat
        centred = flat - self.router_input_mean.to(flat.dtype)  # a new tensor: the update below cannot reach it
        if self.training:
            with torch.no_grad():
                batch_mean = flat.detach().mean(0).to(self.router_input_mean.dtype)
                self.router_input_mean.lerp_(batch_mean, self.opts.router_input_momentum)
        return centred

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o = self.opts
        shape = x.shape
        flat = x.reshape(-1, shape[-1])
        n = flat.shape[0]
        scores = self.router_scores(self.input_for_router(flat))
        scores = self.hook_router_scores(scores.view(*shape[:-1], -1)).reshape(n, -1)
        top_scores, chosen = scores.topk(o.top_k, dim=-1)
        balanced = o.router == "switch" or o.aux_loss_coef > 0
        probs = scores.softmax(-1) if balanced else None
        weights = probs.gather(1, chosen) if o.router == "switch" else top_scores.softmax(-1)
        self.aux_loss = None
        if balanced:
            load = torch.bincount(chosen.reshape(-1), minlength=o.n_experts).float() / (n * o.top_k)
            self.aux_loss = o.aux_loss_coef * o.n_experts * (load * probs.mean(0)).sum()
        self.hook_chosen(chosen.view(*shape[:-1], o.top_k))
        gate = torch.zeros(n, o.n_experts, dtype=weights.dtype, device=x.device).scatter(1, chosen, weights)
        self.hook_gate(gate.view(*shape[:-1], o.n_experts))

        # Group (token, slot) assignments by expert: one matmul per expert, none per token.
        expert_of = chosen.reshape(-1)
        order = expert_of.argsort(stable=True)
        token_of = torch.arange(n, device=x.device).repeat_interleave(o.top_k)[order]
        expert_sorted = expert_of[order]
        counts = torch.bincount(expert_of, minlength=o.n_experts).tolist()
        xs = flat.index_select(0, token_of).split(counts)  # backward: index_add, cheaper than index_put
        w_sorted = weights.reshape(-1)[order, None]

        units = [self.act(xs[e] @ self.W_enc[e] + self.b_enc[e]) for e in range(o.n_experts)]
        if self.hook_post._forward_hooks:  # someone reads or replaces z: build it densely
            hidden = torch.cat(units) * w_sorted.to(units[0].dtype)
            z = torch.zeros(n, o.n_experts, o.d_expert, dtype=hidden.dtype, device=x.device)
            z = z.index_put((token_of, expert_sorted), hidden).view(*shape[:-1], o.n_experts * o.d_expert)
            # An edit in place moves the version counter (autograd's own check); inference tensors keep
            # none, so under torch.inference_mode every hook counts as a replacement.
            version = None if z.is_inference() else z._version
            seen = self.hook_post(z)
            if seen is not z or version is None or seen._version != version:  # the rest of the model reads it
                y = seen.reshape(n, -1) @ self.W_dec.reshape(-1, shape[-1]).to(seen.dtype)
                return (y + self.b_dec).view(shape)
        # Training's path, and the path after a hook that only read z (a cache): the output is then the
        # unhooked layer's, bit for bit. The gate weight scales each expert's d_model-wide output rather
        # than its D-wide hidden units (the same product, half the multiplications), and each expert
        # adds into y where its tokens are: no concatenation of hidden units or outputs.
        tokens, ws = token_of.split(counts), w_sorted.split(counts)
        y = None
        for e in range(o.n_experts):
            if counts[e] == 0:
                continue
            out = units[e] @ self.W_dec[e]
            out = out * ws[e].to(out.dtype)
            if y is None:
                y = torch.zeros(n, shape[-1], dtype=out.dtype, device=x.device)
            y.index_add_(0, tokens[e], out)  # in place: an out-of-place add would copy y per expert
        return (y + self.b_dec).view(shape)


MLP_FACTORIES["moe"] = MoEMLP
