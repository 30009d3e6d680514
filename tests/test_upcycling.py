"""Upcycling (MoE-X Table 4): experts start as tiles of the dense checkpoint's units."""

import torch

from adapters.dense import DenseAdapter, DenseContinuedAdapter
from adapters.upcycling import MoEXUpcycledAdapter
from models.gpt import GPT
from tasks.chess.task import ChessTask


def _models():
    torch.manual_seed(0)
    dense = GPT(DenseAdapter.model_config(ChessTask.dense_config("tiny")))
    moex = GPT(MoEXUpcycledAdapter.model_config(ChessTask.dense_config("tiny")))
    return dense, moex


def test_upcycled_experts_tile_the_dense_units_and_everything_else_is_copied():
    dense, moex = _models()
    with torch.no_grad():
        MoEXUpcycledAdapter.initialise(moex, dense)
    for name, value in dense.state_dict().items():
        if ".mlp." not in name:
            assert torch.equal(moex.state_dict()[name], value), name
    d_mlp, width = dense.blocks[0].mlp.W_in.weight.shape[0], moex.blocks[0].mlp.opts.d_expert
    assert d_mlp == 2 * width  # 8 experts of width 2*d_model tile the 4*d_model dense units 4 times
    for block, dense_block in zip(moex.blocks, dense.blocks):
        for e in range(8):
            units = slice((e % 2) * width, (e % 2 + 1) * width)
            torch.testing.assert_close(block.mlp.W_enc[e], dense_block.mlp.W_in.weight[units].T, atol=1e-2, rtol=0)
            assert not torch.equal(block.mlp.W_enc[e], dense_block.mlp.W_in.weight[units].T)  # the noise
            assert torch.equal(block.mlp.W_dec[e], dense_block.mlp.W_out.weight[:, units].T)


def test_dense_continued_starts_from_the_dense_weights():
    dense, _ = _models()
    torch.manual_seed(1)
    other = GPT(DenseAdapter.model_config(ChessTask.dense_config("tiny")))
    DenseContinuedAdapter.initialise(other, dense)
    assert all(torch.equal(a, b) for a, b in zip(other.state_dict().values(), dense.state_dict().values()))
