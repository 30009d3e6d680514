"""A GPT-2-style decoder written here, speaking TransformerLens's hook grammar.

One readable file in the manner of nanoGPT. Every intermediate activation passes through a named
`HookPoint` (`blocks.{l}.mlp.hook_post`, `blocks.{l}.hook_resid_post`, ...), so `run_with_cache`,
`run_with_hooks` and SAELens's activation store work on it as on a `HookedTransformer`. The MLP
is pluggable: `mlp_factory(cfg)` builds it, which is how MoE layers plug in without this file
knowing about them.
"""

from __future__ import annotations

import importlib
import math
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from core.quiet_imports import hook_points
from models.config import GPTConfig

HookPoint, HookedRootModule = hook_points.HookPoint, hook_points.HookedRootModule

ACTIVATIONS = {"gelu": F.gelu, "relu": F.relu}


class Attention(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.out = nn.Linear(cfg.d_model, cfg.d_model)
        self.hook_z = HookPoint()  # (batch, pos, head, d_head), as TransformerLens names it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.cfg.n_heads, self.cfg.d_head).permute(2, 0, 3, 1, 4)
        # Fused causal attention: the pattern itself is not materialised, so there is no hook_pattern.
        z = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2)
        z = self.hook_z(z)
        return self.out(z.reshape(b, t, -1))


class DenseMLP(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.W_in = nn.Linear(cfg.d_model, cfg.d_mlp)
        self.W_out = nn.Linear(cfg.d_mlp, cfg.d_model)
        self.act = ACTIVATIONS[cfg.act_fn]
        self.hook_pre = HookPoint()
        self.hook_post = HookPoint()  # the hidden units: the "features" of a dense model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.W_out(self.hook_post(self.act(self.hook_pre(self.W_in(x)))))


# name -> callable(cfg) -> nn.Module with hook_post; other MLP modules add themselves on import,
# and are imported on first use from MLP_MODULES.
MLP_FACTORIES: dict[str, Callable[[GPTConfig], nn.Module]] = {"dense": DenseMLP}
MLP_MODULES = {"moe": "models.moe", "topk": "models.topk_mlp"}


class LayerNorm(nn.LayerNorm):
    """nn.LayerNorm whose output (after its weight and bias) passes `hook_normalized`, as TransformerLens
    names it: `blocks.{l}.ln2.hook_normalized` is the MLP's input, which a transcoder reads."""

    def __init__(self, d_model: int):
        super().__init__(d_model)
        self.hook_normalized = HookPoint()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.hook_normalized(super().forward(x))


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln1 = LayerNorm(cfg.d_model)
        self.attn = Attention(cfg)
        self.ln2 = LayerNorm(cfg.d_model)
        if cfg.mlp not in MLP_FACTORIES and cfg.mlp in MLP_MODULES:
            importlib.import_module(MLP_MODULES[cfg.mlp])
        if cfg.mlp not in MLP_FACTORIES:
            raise ValueError(f"mlp {cfg.mlp!r} unknown; choose one of {', '.join(MLP_FACTORIES)}")
        self.mlp = MLP_FACTORIES[cfg.mlp](cfg)
        for name in ("hook_resid_pre", "hook_attn_out", "hook_resid_mid", "hook_mlp_out", "hook_resid_post"):
            setattr(self, name, HookPoint())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.hook_resid_pre(x)
        x = self.hook_resid_mid(x + self.hook_attn_out(self.attn(self.ln1(x))))
        return self.hook_resid_post(x + self.hook_mlp_out(self.mlp(self.ln2(x))))


class GPT(HookedRootModule):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos_embed = nn.Embedding(cfg.n_ctx, cfg.d_model)
        self.hook_embed = HookPoint()
        self.hook_pos_embed = HookPoint()
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_final = nn.LayerNorm(cfg.d_model)
        self.unembed = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.apply(self._init_weights)
        # GPT-2: scale the residual-writing projections by depth so the stream's variance stays put.
        for name, p in self.named_parameters():
            if name.endswith(("attn.out.weight", "W_out.weight", "W_dec")):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layers))
        self.setup()  # HookedRootModule: index the hook points by name
        # SAELens looks here for special tokens to leave out of its metrics; a character vocabulary
        # has none (tasks pass their own tokenizers around).
        self.tokenizer = None

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)

    def forward(self, tokens: torch.Tensor, return_type: str | None = "logits",
                stop_at_layer: int | None = None, loss_per_token: bool = False, **_ignored):
        """tokens (batch, pos) -> logits (batch, pos, vocab); return_type "loss" gives the mean
        next-token loss (or (batch, pos - 1) with loss_per_token), "both" (logits, loss). The
        signature mirrors HookedTransformer.forward (stop_at_layer; prepend_bos and other keywords
        ignored) so SAELens's activation store and run_evals drive this model as they drive theirs."""
        if tokens.shape[1] > self.cfg.n_ctx:
            raise ValueError(f"sequence of {tokens.shape[1]} tokens exceeds n_ctx {self.cfg.n_ctx}")
        if return_type not in ("logits", "loss", "both", None):
            raise ValueError(f"return_type {return_type!r} unknown; choose logits, loss, both or None")
        pos = torch.arange(tokens.shape[1], device=tokens.device)
        x = self.hook_embed(self.embed(tokens)) + self.hook_pos_embed(self.pos_embed(pos))
        for block in self.blocks[:stop_at_layer]:
            x = block(x)
        if stop_at_layer is not None or return_type is None:
            return None
        logits = self.unembed(self.ln_final(x))
        if return_type == "logits":
            return logits
        loss = next_token_loss(logits, tokens, per_token=loss_per_token)
        return loss if return_type == "loss" else (logits, loss)


def auxiliary_loss(model: GPT) -> torch.Tensor | float:
    """Sum of the MLPs' auxiliary losses from the last forward (MoE load balancing); 0 if none."""
    losses = [b.mlp.aux_loss for b in model.blocks if getattr(b.mlp, "aux_loss", None) is not None]
    return sum(losses) if losses else 0.0


def next_token_loss(logits: torch.Tensor, tokens: torch.Tensor, per_token: bool = False) -> torch.Tensor:
    """Cross-entropy of each position's prediction of the next token: the mean, or (batch, pos - 1)."""
    losses = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(), tokens[:, 1:].reshape(-1),
                             reduction="none" if per_token else "mean")
    return losses.view(tokens.shape[0], -1) if per_token else losses
