"""What every MoE model's adapter shares: the parameter matching of docs/moex.md section 5 (M = 8 experts
of width D = 2*d_model, top-2, so 4*d_model active units, equal to the dense model's d_mlp, and
16*d_model in total), and the router diagnostics the results report."""

from __future__ import annotations

import dataclasses

import torch

from bench.adapter import FeatureAdapter
from models.config import GPTConfig

N_EXPERTS, TOP_K = 8, 2
# A router has collapsed when its k most loaded experts take this share of the assignments: every token
# then goes to nearly the same k experts. (One expert alone can take at most 1/k of top-k assignments,
# so a threshold on the largest single load would never fire for k >= 2.)
COLLAPSE_LOAD = 0.9


class ExpertAdapter(FeatureAdapter):
    act_fn: str = "gelu"
    router: str = "learned"
    aux_loss_coef: float = 0.0

    @classmethod
    def model_config(cls, dense: GPTConfig) -> GPTConfig:
        options = {"n_experts": N_EXPERTS, "top_k": TOP_K, "d_expert": dense.d_mlp // TOP_K,
                   "router": cls.router, "aux_loss_coef": cls.aux_loss_coef}
        cfg = dataclasses.replace(dense, mlp="moe", act_fn=cls.act_fn, mlp_options=tuple(sorted(options.items())))
        from models.moe import moe_options

        moe_options(cfg)  # invalid expert settings fail here, at config time
        return cfg

    @torch.no_grad()
    def model_metrics(self, tokens: torch.Tensor, layer: int) -> tuple[dict, dict]:
        """Router diagnostics at the scored layer: correlation of the router's score with each
        expert's realised active units (the paper's Fig. 9 claim for MoE-X: r < -0.95), per-expert
        load, and the mean number of units each expert would fire per token."""
        index = self.resolve_layer(layer)
        mlp, seen = self.model.blocks[index].mlp, {}
        hooks = [f"blocks.{index}.mlp.hook_router_scores", f"blocks.{index}.mlp.hook_chosen"]
        def keep_input(module, args) -> None:  # returns None: the layer's input is read, not replaced
            seen.setdefault("x", args[0])

        handle = mlp.register_forward_pre_hook(keep_input)
        try:
            _, cache = self.model.run_with_cache(tokens, names_filter=hooks, stop_at_layer=index + 1)
        finally:
            handle.remove()
        x = seen["x"].reshape(-1, seen["x"].shape[-1]).float()
        scores = cache[hooks[0]].reshape(len(x), -1).float()
        chosen = cache[hooks[1]].reshape(-1)
        pre = torch.einsum("nd,mdu->nmu", x, mlp.W_enc.float()) + mlp.b_enc.float()
        active = (pre > 0).sum(-1).float()                     # (n, M): units each expert would fire
        corr = torch.corrcoef(torch.stack([scores.flatten(), active.flatten()]))[0, 1].item()
        load = torch.bincount(chosen, minlength=mlp.opts.n_experts).float() / len(chosen)
        top_k_load = load.topk(mlp.opts.top_k).values.sum().item()
        metrics = {"router_sparsity_corr": corr, "expert_load_max": load.max().item(),
                   "router_collapsed": float(top_k_load >= COLLAPSE_LOAD)}
        details = {"expert_load": [round(v, 4) for v in load.tolist()],
                   "expert_active_units_mean": [round(v, 2) for v in active.mean(0).tolist()],
                   "router": mlp.opts.router, "n_experts": mlp.opts.n_experts, "top_k": mlp.opts.top_k,
                   "d_expert": mlp.opts.d_expert, "aux_loss_coef": mlp.opts.aux_loss_coef,
                   "tokens_for_router_stats": len(x), "top_k_load": round(top_k_load, 4)}
        return metrics, details
