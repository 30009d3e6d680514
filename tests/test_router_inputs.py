"""The router reading: each measure on hand-worked inputs, and one block of a random tiny MoE-X."""

import pytest
import torch

from analysis.router_inputs import block_reading, loads, score_spread, shared_mean_share, unused, unused_if_centred
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


def _layer(router: str):
    from models.config import GPTConfig
    from models.moe import MoEMLP

    cfg = GPTConfig(d_model=4, n_layers=1, n_heads=1, d_mlp=8, n_ctx=8, vocab_size=8, mlp="moe",
                    mlp_options=(("n_experts", 4), ("top_k", 1), ("router", router)))
    return MoEMLP(cfg)


def test_centring_removes_a_shared_offset_and_nothing_else():
    torch.manual_seed(0)
    layer = _layer("learned")
    with torch.no_grad():
        layer.router.weight.copy_(torch.eye(4))    # expert j's logit is x_j
    spread = torch.eye(4).repeat(8, 1)             # each token wants its own expert; mean (1/4, ...) shared
    shared = spread + torch.tensor([10.0, 0.0, 0.0, 0.0])   # every token pushed to expert 0
    top = lambda x: layer.router_scores(x).topk(1, dim=-1).indices  # noqa: E731
    assert unused(loads(top(shared), 4)) == 3
    assert unused_if_centred(layer, shared) == 0
    # an input whose mean is already zero routes as it did
    balanced = spread - spread.mean(0)
    assert unused_if_centred(layer, balanced) == unused(loads(top(balanced), 4)) == 0
    sparsity = _layer("sparsity")
    x = torch.randn(64, 4)
    x -= x.mean(0)
    assert unused_if_centred(sparsity, x) == unused(loads(sparsity.router_scores(x).topk(1, dim=-1).indices, 4))


def test_a_block_of_a_random_moex_is_read_whole():
    task, cls = registry.task("chess"), registry.model_adapter("moex")
    adapter = cls(build_random(cls, task, "tiny", 0).eval())
    tokens = task.validation_tokens("tiny", 0)[:4]
    reading = block_reading(adapter, tokens, 0)
    # the loads agree with the results' own router diagnostics on the same tokens
    _, details = adapter.model_metrics(tokens, 0)
    assert reading["load"] == details["expert_load"] and reading["unused"] == details["experts_unused"]
    assert reading["top_k_load"] == pytest.approx(details["top_k_load"], abs=1e-4)
    # the first choice's weight, recomputed from the scores: the sparsity router's softmax over its top k
    scores = adapter.router_view(tokens, 0)["scores"]
    first = scores.topk(reading["top_k"], dim=-1).values.softmax(-1)[:, 0].mean().item()
    assert reading["top1_gate"] == pytest.approx(first, abs=1e-6)
    assert (reading["score_between"], reading["score_within"]) == pytest.approx(score_spread(scores))
    assert reading["router"] == "sparsity" and reading["block"] == 0


def test_a_run_replaces_what_it_read_and_keeps_the_seeds_it_could_not_read():
    from analysis.router_inputs import merged

    old_provenance = {"git_sha": "abc", "created": "2026-12-01T00:00:00+00:00"}
    earlier = {"provenance": old_provenance, "readings": [
        {"model": "moex", "seed": 0, "blocks": ["old"]}, {"model": "moex", "seed": 2, "blocks": ["old"]}]}
    new = [{"model": "moex", "seed": 0, "blocks": ["new"], "provenance": {"created": "now"}},
           {"model": "moe", "seed": 0, "blocks": ["new"], "provenance": {"created": "now"}}]
    readings, kept = merged(earlier, new)
    assert [(r["model"], r["seed"], r["blocks"]) for r in readings] == [
        ("moex", 0, ["new"]), ("moex", 2, ["old"]), ("moe", 0, ["new"])]
    assert kept == [readings[1]] and kept[0]["provenance"] == old_provenance
    # a kept reading that names its own provenance keeps it
    again, _ = merged({"provenance": {"created": "later"}, "readings": readings}, [])
    assert again[1]["provenance"] == old_provenance and again[0]["provenance"] == {"created": "now"}
    assert merged(None, new) == (new, [])
