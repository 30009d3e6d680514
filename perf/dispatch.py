"""MoE layer speed against its two obvious references, and the machine's matmul peak with each
model's FLOP utilisation, for `make perf`.

Dispatch: forward + backward of one MLP layer on the `cpu` preset's tokens (32 x 256, d_model 128):
- our MoE layer (8 experts of width 256, top-2, GELU, learned router): the layer under test;
- the dense MLP of the same active width (512): the cost floor, aim <= 1.25x;
- TransformerLens's built-in MoE (`transformer_lens.components.MoE`, Mixtral-style) with the same
  experts, width and top-k: aim faster. Its experts are gated (three matrices, not two), so it does
  1.5x our arithmetic; the ratio per FLOP is reported beside the raw one.
Utilisation: a large fp32 matmul's FLOP rate is the peak; a training step's FLOPs are counted as
6 x (matmul parameters) x tokens + the attention score and value products (12 x layers x ctx x
d_model x tokens), divided by the measured step time.
"""

from __future__ import annotations

import torch

from perf.timing import interleaved_seconds, median_seconds


def _fwd_bwd(module, x):
    def step():
        module.zero_grad(set_to_none=True)
        module(x).sum().backward()
    return step


def _ours_and_dense(d_model: int, n_experts: int, top_k: int, tokens: int):
    """Our MoE layer and the dense MLP of its active width, on the same random input."""
    from models.config import GPTConfig
    from models.gpt import DenseMLP
    from models.moe import MoEMLP

    torch.manual_seed(0)
    d_expert = 4 * d_model // top_k
    x = torch.randn(32, tokens // 32, d_model)
    ours = MoEMLP(GPTConfig(vocab_size=32, n_ctx=tokens // 32, d_model=d_model, n_layers=1, n_heads=4,
                            d_mlp=4 * d_model, mlp="moe",
                            mlp_options=(("d_expert", d_expert), ("n_experts", n_experts), ("top_k", top_k))))
    dense = DenseMLP(GPTConfig(vocab_size=32, n_ctx=tokens // 32, d_model=d_model, n_layers=1, n_heads=4,
                               d_mlp=top_k * d_expert))
    return x, ours, dense, d_expert


def dispatch_profile(steps: int = 10, top: int = 10, d_model: int = 128, n_experts: int = 8, top_k: int = 2,
                     tokens: int = 32 * 256) -> dict:
    """Where the MoE layer's time goes beside the dense MLP's: self CPU milliseconds per forward +
    backward, by operator (torch profiler), the top operators of either."""
    from torch.profiler import ProfilerActivity, profile

    x, ours, dense, _ = _ours_and_dense(d_model, n_experts, top_k, tokens)
    per_op = {}
    for name, module in (("ours", ours), ("dense", dense)):
        step = _fwd_bwd(module, x)
        for _ in range(3):
            step()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(steps):
                step()
        per_op[name] = {e.key: e.self_cpu_time_total / 1000 / steps for e in prof.key_averages()}
    ops = sorted(set(per_op["ours"]) | set(per_op["dense"]),
                 key=lambda op: -max(per_op["ours"].get(op, 0), per_op["dense"].get(op, 0)))[:top]
    return {"self_ms_per_step": {op: {name: per_op[name].get(op, 0.0) for name in per_op} for op in ops},
            "total_ms_per_step": {name: sum(v.values()) for name, v in per_op.items()}}


def dispatch_seconds(d_model: int = 128, n_experts: int = 8, top_k: int = 2, tokens: int = 32 * 256) -> dict:
    from transformer_lens import HookedTransformerConfig
    from transformer_lens.components import MoE as TLMoE

    x, ours, dense, d_expert = _ours_and_dense(d_model, n_experts, top_k, tokens)
    tl = TLMoE(HookedTransformerConfig(n_layers=1, d_model=d_model, n_ctx=tokens // 32, d_head=d_model // 4,
                                       n_heads=4, d_mlp=d_expert, act_fn="gelu", num_experts=n_experts,
                                       experts_per_token=top_k, d_vocab=32))
    out = interleaved_seconds({"ours": _fwd_bwd(ours, x), "dense": _fwd_bwd(dense, x), "tl": _fwd_bwd(tl, x)})
    return {"seconds": out, "ours_over_dense": out["ours"] / out["dense"], "ours_over_tl": out["ours"] / out["tl"],
            "ours_over_tl_per_flop": out["ours"] / (out["tl"] / 1.5),
            "shape": {"tokens": tokens, "d_model": d_model, "n_experts": n_experts, "top_k": top_k,
                      "d_expert": d_expert}}


def matmul_peak_flops(n: int = 2048) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n ** 3 / median_seconds(lambda: a @ b, repeats=5)


def step_flops(model, tokens: int) -> float:
    """6 x matmul parameters x tokens (forward + backward) + attention products, per training step.
    Only the k active experts' weights count for an MoE layer."""
    cfg = model.cfg
    matmul_params = 0
    for name, p in model.named_parameters():
        if p.dim() < 2 or name.startswith(("embed.", "pos_embed.")) or name.endswith(".b_enc"):
            continue  # biases and lookups are no matmul; the unembedding is
        if ".mlp.W_enc" in name or ".mlp.W_dec" in name:  # (M, ., .): only top_k of M experts run per token
            opts = dict(cfg.mlp_options)
            matmul_params += p.numel() * opts["top_k"] // opts["n_experts"]
        else:
            matmul_params += p.numel()
    attention = 12 * cfg.n_layers * cfg.n_ctx * cfg.d_model
    return (6 * matmul_params + attention) * tokens
