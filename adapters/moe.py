"""The MoE family: every model whose MLP is a mixture of experts, generated from one table of
(experts' activation, router, auxiliary loss), and what they share: the parameter matching of
docs/moex.md section 5 (M = 8 experts of width D = 2*d_model, top-2, so 4*d_model active units, equal
to the dense model's d_mlp, and 16*d_model in total) and the router diagnostics the results report.
Features are the expert units z at blocks.{l}.mlp.hook_post.

`moex` is MoE-X (ReLU experts, sparsity-aware router); `moe-relu` differs from it in the router
alone, `moex-gelu` in the experts alone (the paper's Table 3 corners), `moex-balanced` in a
load-balancing loss and `moex-centred` in a router that sees its input minus a running mean (both ours:
two fixes for the experts MoE-X leaves unused); `moe` and `switch` are the vanilla baselines.
The upcycled MoE-X is in adapters/upcycling.py.
"""

from __future__ import annotations

import dataclasses

import torch

from core.adapter import FeatureAdapter
from models.config import GPTConfig

N_EXPERTS, TOP_K = 8, 2
# A router has collapsed when its k most loaded experts take this share of the assignments: every token
# then goes to nearly the same k experts. (One expert alone can take at most 1/k of top-k assignments,
# so a threshold on the largest single load would never fire for k >= 2.)
COLLAPSE_LOAD = 0.9
# An expert is unused when it takes under a quarter of its even share (1/M) of the assignments. It then
# barely trains, and its units count as dead; a router can lose most experts this way without
# collapsing (five of eight unused, the other three sharing the load evenly).
UNUSED_SHARE = 0.25
SWITCH_AUX = 0.01  # the Switch Transformer's load-balancing coefficient
# The centred router's running mean: a time constant of about 100 steps, short beside a 7,000-step run.
ROUTER_INPUT_MOMENTUM = 0.01

# class name: (experts' activation, router, auxiliary loss coefficient, what the features are[, router input])
FAMILY = {
    "MoEAdapter": ("gelu", "learned", 0.0, "MoE expert units z (GELU experts, learned top-k router)"),
    "MoEReluAdapter": ("relu", "learned", 0.0, "MoE expert units z (ReLU experts, learned top-k router)"),
    "SwitchAdapter": ("gelu", "switch", SWITCH_AUX,
                      "MoE expert units z (GELU experts, Switch router + load-balancing loss 0.01)"),
    "SwitchReluAdapter": ("relu", "switch", SWITCH_AUX,
                          "MoE expert units z (ReLU experts, Switch router + load-balancing loss 0.01)"),
    "MoEXAdapter": ("relu", "sparsity", 0.0, "MoE-X expert units z (ReLU experts, sparsity-aware router)"),
    "MoEXGeluAdapter": ("gelu", "sparsity", 0.0, "MoE expert units z (GELU experts, sparsity-aware router)"),
    # The paper does not say whether MoE-X balanced its experts; without a loss, ours lose some.
    "MoEXBalancedAdapter": ("relu", "sparsity", SWITCH_AUX, "MoE-X expert units z (ReLU experts, sparsity-aware "
                            "router + load-balancing loss 0.01 over the softmax of its scores)"),
    # A shared component of the router's input, not the token, decides which experts MoE-X leaves unused
    # (analysis/router_inputs.py); centring removes it from the scores alone.
    "MoEXCentredAdapter": ("relu", "sparsity", 0.0, "MoE-X expert units z (ReLU experts, sparsity-aware router "
                           "scoring its input minus a running mean)", "centred"),
}


class ExpertAdapter(FeatureAdapter):
    act_fn: str = "gelu"
    router: str = "learned"
    aux_loss_coef: float = 0.0
    router_input: str = "raw"

    @classmethod
    def model_config(cls, dense: GPTConfig) -> GPTConfig:
        options = {"n_experts": N_EXPERTS, "top_k": TOP_K, "d_expert": dense.d_mlp // TOP_K,
                   "router": cls.router, "aux_loss_coef": cls.aux_loss_coef}
        if cls.router_input != "raw":  # only when set, so the configs saved before the option still match
            options.update(router_input=cls.router_input, router_input_momentum=ROUTER_INPUT_MOMENTUM)
        cfg = dataclasses.replace(dense, mlp="moe", act_fn=cls.act_fn, mlp_options=tuple(sorted(options.items())))
        from models.moe import moe_options

        moe_options(cfg)  # invalid expert settings fail here, at config time
        return cfg

    def experts(self, layer: int):
        """The MoE layer at `layer` (its W_enc, b_enc, opts), for analyses of the experts themselves."""
        return self.model.blocks[self.resolve_layer(layer)].mlp

    @torch.no_grad()
    def router_view(self, tokens: torch.Tensor, layer: int) -> dict:
        """Per token and expert at `layer`: the router's score, the units the expert would fire
        (realised L0 of its pre-activations), each token's chosen experts and routing weights (zero
        off the chosen), and the layer's input x (tokens, d_model)."""
        index = self.resolve_layer(layer)
        mlp, seen = self.experts(index), {}
        hooks = [f"blocks.{index}.mlp.hook_{name}" for name in ("router_scores", "chosen", "gate")]

        def keep_input(module, args) -> None:  # returns None: the layer's input is read, not replaced
            seen.setdefault("x", args[0])

        handle = mlp.register_forward_pre_hook(keep_input)
        try:
            _, cache = self.model.run_with_cache(tokens, names_filter=hooks, stop_at_layer=index + 1)
        finally:
            handle.remove()
        x = seen["x"].reshape(-1, seen["x"].shape[-1]).float()
        pre = torch.einsum("nd,mdu->nmu", x, mlp.W_enc.float()) + mlp.b_enc.float()
        return {"scores": cache[hooks[0]].reshape(len(x), -1).float(), "active": (pre > 0).sum(-1).float(),
                "chosen": cache[hooks[1]].reshape(-1), "gate": cache[hooks[2]].reshape(len(x), -1).float(), "x": x}

    @torch.no_grad()
    def model_metrics(self, tokens: torch.Tensor, layer: int) -> tuple[dict, dict]:
        """Router diagnostics at the scored layer: correlation of the router's score with each
        expert's realised active units (the paper's Fig. 9: MoE-X's score picks sparser experts), per-expert
        load, and the mean number of units each expert would fire per token."""
        view, opts = self.router_view(tokens, layer), self.experts(layer).opts
        scores, active, chosen = view["scores"], view["active"], view["chosen"]
        load = torch.bincount(chosen, minlength=opts.n_experts).float() / len(chosen)
        top_k_load = load.topk(opts.top_k).values.sum().item()
        metrics = {"router_sparsity_corr": router_active_corr(scores, active), "expert_load_max": load.max().item(),
                   "router_collapsed": float(top_k_load >= COLLAPSE_LOAD)}
        details = {"expert_load": [round(v, 4) for v in load.tolist()],
                   "expert_active_units_mean": [round(v, 2) for v in active.mean(0).tolist()],
                   "router": opts.router, "n_experts": opts.n_experts, "top_k": opts.top_k,
                   "d_expert": opts.d_expert, "aux_loss_coef": opts.aux_loss_coef, "router_input": opts.router_input,
                   "tokens_for_router_stats": len(scores), "top_k_load": round(top_k_load, 4),
                   "experts_unused": int((load < UNUSED_SHARE / opts.n_experts).sum().item())}
        return metrics, details


def router_active_corr(scores: torch.Tensor, active: torch.Tensor) -> float:
    """Pearson correlation over every (token, expert) pair of the router's score and the expert's
    realised active units."""
    return torch.corrcoef(torch.stack([scores.flatten(), active.flatten()]))[0, 1].item()


def _member(name: str, act_fn: str, router: str, aux_loss_coef: float, feature_kind: str,
            router_input: str = "raw") -> type:
    return type(name, (ExpertAdapter,), {"act_fn": act_fn, "router": router, "aux_loss_coef": aux_loss_coef,
                                         "router_input": router_input, "feature_kind": feature_kind,
                                         "__module__": __name__})


MoEAdapter = _member("MoEAdapter", *FAMILY["MoEAdapter"])
MoEReluAdapter = _member("MoEReluAdapter", *FAMILY["MoEReluAdapter"])
SwitchAdapter = _member("SwitchAdapter", *FAMILY["SwitchAdapter"])
SwitchReluAdapter = _member("SwitchReluAdapter", *FAMILY["SwitchReluAdapter"])
MoEXAdapter = _member("MoEXAdapter", *FAMILY["MoEXAdapter"])
MoEXGeluAdapter = _member("MoEXGeluAdapter", *FAMILY["MoEXGeluAdapter"])
MoEXBalancedAdapter = _member("MoEXBalancedAdapter", *FAMILY["MoEXBalancedAdapter"])
MoEXCentredAdapter = _member("MoEXCentredAdapter", *FAMILY["MoEXCentredAdapter"])
