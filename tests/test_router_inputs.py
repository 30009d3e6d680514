"""The router reading: each measure on hand-worked inputs, and one block of a random tiny MoE-X."""

import pytest
import torch

from analysis.router_inputs import block_reading, loads, score_spread, shared_mean_share, unused
from bench import registry
from bench.model_store import build_random


def test_the_shared_mean_share_is_what_every_token_has_in_common():
    assert shared_mean_share(torch.tensor([[3.0, 4.0], [3.0, 4.0]])) == pytest.approx(1.0)
    assert shared_mean_share(torch.tensor([[3.0, 4.0], [-3.0, -4.0]])) == pytest.approx(0.0)
    # mean (1, 0), |mean| 1; norms sqrt(2) each
    assert shared_mean_share(torch.tensor([[1.0, 1.0], [1.0, -1.0]])) == pytest.approx(1 / 2 ** 0.5)


def test_loads_and_unused_experts_count_assignments():
    chosen = torch.tensor([[0, 1], [0, 1], [0, 2], [0, 1]])  # 8 assignments over 4 experts
    load = loads(chosen, 4)
    assert load.tolist() == [0.5, 0.375, 0.125, 0.0]
    # a quarter of the even share is 1/16: expert 3 (0) is unused, expert 2 (1/8) is not
    assert unused(load) == 1


def test_the_score_spread_separates_expert_from_token():
    by_expert = torch.tensor([[1.0, -1.0], [1.0, -1.0], [1.0, -1.0]])   # the expert decides, every token alike
    assert score_spread(by_expert) == pytest.approx((1.0, 0.0))
    by_token = torch.tensor([[1.0, 1.0], [-1.0, -1.0]])                  # the token decides, experts alike
    assert score_spread(by_token) == pytest.approx((0.0, 1.0))


def test_a_block_of_a_random_moex_is_read_whole():
    task, cls = registry.task("chess"), registry.model_adapter("moex")
    adapter = cls(build_random(cls, task, "tiny", 0).eval())
    tokens = task.validation_tokens("tiny", 0)[:4]
    reading = block_reading(adapter, tokens, 0)
    m, k = reading["n_experts"], reading["top_k"]
    assert reading["router"] == "sparsity" and len(reading["load"]) == m
    assert sum(reading["load"]) == pytest.approx(1.0, abs=1e-3)
    assert 0 <= reading["unused"] <= m - k and 0 <= reading["unused_if_centred"] <= m - k
    assert 1 / k - 1e-6 <= reading["top1_gate"] <= 1.0
    assert 0.0 <= reading["shared_mean_share"] <= 1.0
