"""MoE-X (spec/moex.md): ReLU experts + the sparsity-aware router, and the "sparsity router only"
corner of the paper's Table 3 (GELU experts + sparsity router)."""

from __future__ import annotations

from moex.expert_adapter import ExpertAdapter


class MoEXAdapter(ExpertAdapter):
    feature_kind = "MoE-X expert units z (ReLU experts, sparsity-aware router)"
    act_fn, router, aux_loss_coef = "relu", "sparsity", 0.0


class MoEXGeluAdapter(ExpertAdapter):
    feature_kind = "MoE expert units z (GELU experts, sparsity-aware router)"
    act_fn, router, aux_loss_coef = "gelu", "sparsity", 0.0
