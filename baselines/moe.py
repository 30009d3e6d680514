"""Vanilla MoE baselines: learned top-k router (`moe`), Switch router with its load-balancing loss
(`switch`), and Switch routing with ReLU experts (`switch-relu`, the "ReLU experts only" corner of
the MoE-X paper's Table 3). `moe-relu` (ReLU experts, learned router, no auxiliary loss) differs from
`moex` in the router alone. Features are the expert units z at blocks.{l}.mlp.hook_post."""

from __future__ import annotations

from bench.expert_adapter import ExpertAdapter


class MoEAdapter(ExpertAdapter):
    feature_kind = "MoE expert units z (GELU experts, learned top-k router)"
    act_fn, router, aux_loss_coef = "gelu", "learned", 0.0


class SwitchAdapter(ExpertAdapter):
    feature_kind = "MoE expert units z (GELU experts, Switch router + load-balancing loss 0.01)"
    act_fn, router, aux_loss_coef = "gelu", "switch", 0.01


class SwitchReluAdapter(ExpertAdapter):
    feature_kind = "MoE expert units z (ReLU experts, Switch router + load-balancing loss 0.01)"
    act_fn, router, aux_loss_coef = "relu", "switch", 0.01


class MoEReluAdapter(ExpertAdapter):
    feature_kind = "MoE expert units z (ReLU experts, learned top-k router)"
    act_fn, router, aux_loss_coef = "relu", "learned", 0.0
