"""A collapsed router is flagged: with top-2 routing no single expert can take over half the
assignments, so collapse is judged on the share of the k busiest experts."""

import torch

from bench import registry
from models.gpt import GPT
from tasks.chess.task import ChessTask


def _moex_adapter():
    cls = registry.model_adapter("moex")
    torch.manual_seed(0)
    return cls(GPT(cls.model_config(ChessTask.dense_config("tiny"))).eval())


def test_a_router_sending_every_token_to_the_same_two_experts_is_collapsed():
    adapter = _moex_adapter()
    mlp = adapter.model.blocks[0].mlp
    with torch.no_grad():
        # Experts 0 and 1 can fire no unit, so the sparsity router picks them for every token.
        mlp.b_enc[:2] = -1e4
    metrics, details = adapter.model_metrics(torch.randint(0, 20, (4, 32)), 0)
    assert details["top_k"] == 2 and details["expert_load"][:2] == [0.5, 0.5]
    assert metrics["expert_load_max"] == 0.5 and details["top_k_load"] == 1.0
    assert metrics["router_collapsed"] == 1.0


def test_a_router_spreading_tokens_is_not_collapsed():
    metrics, details = _moex_adapter().model_metrics(torch.randint(0, 20, (4, 32)), 0)
    assert details["top_k_load"] < 0.9 and metrics["router_collapsed"] == 0.0


def test_experts_under_a_quarter_of_their_even_share_are_counted_unused():
    adapter = _moex_adapter()
    # 64 assignments over 8 experts: an even share is 8, a quarter of it 2. Experts 0-2 take 23, 19 and
    # 19, expert 3 exactly 2 (not unused), expert 4 one, experts 5-7 none: four unused, and no collapse.
    chosen = torch.tensor([0] * 23 + [1] * 19 + [2] * 19 + [3] * 2 + [4] * 1)
    adapter.router_view = lambda tokens, layer: {"scores": torch.randn(32, 8), "active": torch.rand(32, 8),
                                                 "chosen": chosen}
    metrics, details = adapter.model_metrics(None, 0)
    assert details["experts_unused"] == 4 and metrics["router_collapsed"] == 0.0


def test_a_collapsed_router_leaves_all_but_k_experts_unused():
    adapter = _moex_adapter()
    with torch.no_grad():
        adapter.model.blocks[0].mlp.b_enc[:2] = -1e4
    _, details = adapter.model_metrics(torch.randint(0, 20, (4, 32)), 0)
    assert details["experts_unused"] == 6
