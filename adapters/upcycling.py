"""MoE-X upcycled from the dense checkpoint, then trained further (the paper's headline chess MoE-X,
Table 4). Its fair comparison is `dense-continued` (adapters/dense.py): the dense checkpoint trained
again for the same steps."""

from __future__ import annotations

import torch

from adapters.moe import MoEXAdapter


class MoEXUpcycledAdapter(MoEXAdapter):
    """Everything outside the MLPs is copied; expert e takes the dense hidden units
    [(e mod r) * D, (e mod r + 1) * D) with r = d_mlp / D, i.e. the dense units tiled over the
    experts, plus small noise so that copies of the same units can diverge. The GELU units become
    ReLU units: the further training adapts to that."""
    feature_kind = "MoE-X expert units z (upcycled from the dense checkpoint)"
    initialise_from = "dense"
    noise_std = 1e-3

    @classmethod
    def initialise(cls, model, source) -> None:
        own = model.state_dict()  # shares storage with the parameters: copying into it sets them
        for name, value in source.state_dict().items():
            if ".mlp." not in name:
                own[name].copy_(value)
        for block, dense_block in zip(model.blocks, source.blocks):
            mlp, dense = block.mlp, dense_block.mlp
            width = mlp.opts.d_expert
            copies = dense.W_in.weight.shape[0] // width
            if copies * width != dense.W_in.weight.shape[0]:
                raise ValueError(f"expert width {width} does not tile the dense width {dense.W_in.weight.shape[0]}")
            for e in range(mlp.opts.n_experts):
                units = slice((e % copies) * width, (e % copies + 1) * width)
                mlp.W_enc[e].copy_(dense.W_in.weight[units].T + cls.noise_std * torch.randn_like(mlp.W_enc[e]))
                mlp.b_enc[e].copy_(dense.W_in.bias[units])
                mlp.W_dec[e].copy_(dense.W_out.weight[:, units].T)
            mlp.b_dec.copy_(dense.W_out.bias)
