"""A dense ReLU MLP that keeps, for each token, only its k largest hidden activations: the top-k
("lazy neuron") transformer of Li et al. 2023 (arXiv 2210.06313).

It is the control for MoE-X's claim: a hidden code exactly as sparse as MoE-X's (k = MoE-X's measured
L0), with no experts and no router. Weights and hooks are the dense MLP's, so `blocks.{l}.mlp.hook_post`
holds the sparse code (at most k non-zero units per token) and a dense checkpoint's MLP loads into it.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from models.config import GPTConfig
from models.gpt import ACTIVATIONS, MLP_FACTORIES, HookPoint


def top_k_of(h: torch.Tensor, k: int) -> torch.Tensor:
    """h with all but each row's k largest entries set to zero; the gradient flows to the kept ones."""
    top = h.topk(k, dim=-1)
    return torch.zeros_like(h).scatter(-1, top.indices, top.values)


class TopKMLP(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        options = dict(cfg.mlp_options)
        if "k" not in options:
            raise ValueError("mlp 'topk' needs mlp_options (('k', <int>),): how many hidden units each token keeps")
        self.k = int(options["k"])
        if not 1 <= self.k <= cfg.d_mlp:
            raise ValueError(f"top-k MLP: k {self.k} must be between 1 and the MLP width {cfg.d_mlp}")
        self.W_in = nn.Linear(cfg.d_model, cfg.d_mlp)
        self.W_out = nn.Linear(cfg.d_mlp, cfg.d_model)
        self.act = ACTIVATIONS[cfg.act_fn]
        self.hook_pre = HookPoint()
        self.hook_post = HookPoint()  # the sparse code: at most k non-zero units per token

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.W_out(self.hook_post(top_k_of(self.act(self.hook_pre(self.W_in(x))), self.k)))


MLP_FACTORIES["topk"] = TopKMLP
