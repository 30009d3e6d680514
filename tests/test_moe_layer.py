"""The MoE layer: the wide-MLP identity, the sparsity router's choices and gradients, splicing z."""

import dataclasses

import pytest
import torch

from models.config import GPTConfig
from models.gpt import GPT
from models.moe import MoEMLP, MoEOptions


def _cfg(router="sparsity", act="relu", m=4, k=2, d=16, dx=8, **extra):
    opts = {"n_experts": m, "top_k": k, "d_expert": dx, "router": router, **extra}
    return GPTConfig(vocab_size=32, n_ctx=16, d_model=d, n_layers=2, n_heads=2, d_mlp=k * dx, act_fn=act,
                     mlp="moe", mlp_options=tuple(sorted(opts.items())))


def _z_and_output(layer, x):
    captured = {}
    # returns a copy: a replaced z, so the layer's output comes from the dense product (a z only read
    # would take the sparse path that `fast` takes)
    layer.hook_post.add_hook(lambda z, hook: captured.setdefault("z", z).clone())
    slow = layer(x)
    layer.hook_post.remove_hooks()
    fast = layer(x)
    return captured["z"], slow, fast


@pytest.mark.parametrize("seed", [0, 1, 2])  # several weights and inputs, the same on every run
@pytest.mark.parametrize("router,act", [("learned", "gelu"), ("switch", "gelu"), ("sparsity", "relu"),
                                        ("sparsity", "gelu"), ("learned", "relu")])
def test_layer_is_the_concatenated_decoder_applied_to_z(router, act, seed):
    torch.manual_seed(seed)
    layer = MoEMLP(_cfg(router, act, aux_loss_coef=0.01 if router == "switch" else 0.0))
    torch.nn.init.normal_(layer.b_enc, std=0.5)
    x = torch.randn(3, 5, 16)
    z, slow, fast = _z_and_output(layer, x)
    assert z.shape == (3, 5, 4 * 8)
    wide = z @ torch.cat(list(layer.W_dec), dim=0) + layer.b_dec
    torch.testing.assert_close(fast, wide, rtol=1e-5, atol=1e-6, msg=lambda m: f"seed {seed}: {m}")
    torch.testing.assert_close(slow, fast, rtol=1e-5, atol=1e-6, msg=lambda m: f"seed {seed}: {m}")
    # at most k non-zero blocks per token
    blocks = z.view(3, 5, 4, 8).abs().sum(-1) > 0
    assert (blocks.sum(-1) <= 2).all()


def _realised_active_units(layer, x):
    pre = torch.einsum("nd,mdu->nmu", x, layer.W_enc) + layer.b_enc
    return (pre > 0).sum(-1)  # (n, M)


def test_sparsity_router_picks_the_experts_with_fewest_active_units():
    torch.manual_seed(1)
    layer = MoEMLP(_cfg(m=4, k=2, dx=2048))
    with torch.no_grad():
        layer.W_enc.normal_(std=1.0)
        layer.b_enc.copy_(torch.tensor([-3.0, 3.0, -1.0, 1.0])[:, None].expand(4, 2048))
    x = torch.randn(64, 16)
    chosen = layer.router_scores(x).topk(2, dim=-1).indices.sort(-1).values
    fewest = _realised_active_units(layer, x).topk(2, dim=-1, largest=False).indices.sort(-1).values
    assert (chosen == fewest).float().mean() == 1.0


def test_gate_score_correlates_strongly_negatively_with_realised_active_units():
    torch.manual_seed(2)
    layer = MoEMLP(_cfg(m=8, k=2, dx=256))
    with torch.no_grad():
        layer.W_enc.normal_(std=0.3)
        layer.b_enc.copy_(torch.randn(8, 1).expand(8, 256))
    x = torch.randn(512, 16)
    g = layer.router_scores(x).flatten()
    active = _realised_active_units(layer, x).flatten().float()
    r = torch.corrcoef(torch.stack([g, active]))[0, 1].item()
    assert r < -0.95, r


def test_gradients_reach_the_expert_encoders_through_the_gate():
    torch.manual_seed(3)
    layer = MoEMLP(_cfg(m=4, k=2))
    gate = {}
    layer.hook_gate.add_hook(lambda w, hook: gate.setdefault("w", w))
    layer(torch.randn(2, 3, 16))
    # The gate's weights depend on W_enc only through the router's column statistics.
    (gate["w"] * torch.arange(4.0)).sum().backward()
    assert layer.W_enc.grad is not None and layer.W_enc.grad.abs().sum() > 0
    assert layer.b_enc.grad.abs().sum() > 0


def test_learned_router_gate_does_not_touch_the_encoders():
    torch.manual_seed(3)
    layer = MoEMLP(_cfg("learned", "gelu"))
    gate = {}
    layer.hook_gate.add_hook(lambda w, hook: gate.setdefault("w", w))
    layer(torch.randn(2, 3, 16))
    (gate["w"] * torch.arange(4.0)).sum().backward()
    assert layer.W_enc.grad is None and layer.router.weight.grad.abs().sum() > 0


def test_switch_auxiliary_loss_is_alpha_m_sum_f_p():
    torch.manual_seed(4)
    layer = MoEMLP(_cfg("switch", "gelu", m=4, k=2, aux_loss_coef=0.01))
    x = torch.randn(10, 16)
    layer(x)
    probs = layer.router(x).softmax(-1)
    chosen = probs.topk(2, dim=-1).indices
    f = torch.stack([(chosen == j).sum() for j in range(4)]).float() / 20
    torch.testing.assert_close(layer.aux_loss, 0.01 * 4 * (f * probs.mean(0)).sum())


def test_splicing_z_back_gives_the_same_logits_and_loss_recovered_one():
    torch.manual_seed(5)
    model = GPT(_cfg())
    tokens = torch.randint(0, 32, (2, 16))
    hook = "blocks.1.mlp.hook_post"
    clean = model(tokens)
    spliced = model.run_with_hooks(tokens, fwd_hooks=[(hook, lambda z, hook: z.clone())])
    torch.testing.assert_close(spliced, clean, rtol=1e-5, atol=1e-5)
    # the harness's own splice (the adapter's features put back through its reconstruction); the
    # block's output scaled up first, so that ablating it moves the loss by more than float noise
    from adapters.moe import MoEXAdapter
    from core.fidelity import fidelity

    with torch.no_grad():
        model.blocks[1].mlp.W_dec.mul_(50)
    class SpliceRun(MoEXAdapter):  # fidelity skips an identity splice; here it is run, through z built densely
        def splice_is_identity(self, layer, site):
            return False

    out = fidelity(SpliceRun(model.eval()), tokens, layer=1, site="mlp")
    assert out["loss_recovered"] == pytest.approx(1.0, abs=1e-4)
    assert out["ce_splice"] == pytest.approx(out["ce_clean"], abs=1e-5)
    assert abs(out["ce_zero_ablation"] - out["ce_clean"]) > 1e-3  # a denominator well above float noise


def test_a_hook_that_only_reads_z_changes_no_later_number_and_an_edit_in_place_is_seen():
    torch.manual_seed(6)
    model = GPT(_cfg()).eval()
    tokens = torch.randint(0, 32, (2, 16))
    hook = "blocks.1.mlp.hook_post"
    with torch.no_grad():
        clean = model(tokens)
        read, cache = model.run_with_cache(tokens, names_filter=[hook])
        assert torch.equal(read, clean)  # bit for bit: the unhooked layer's own arithmetic after a read
        assert cache[hook].shape[-1] == model.blocks[1].mlp.opts.n_experts * model.blocks[1].mlp.opts.d_expert

        def zero_in_place(z, hook):
            z[:] = 0
            return z

        edited = model.run_with_hooks(tokens, fwd_hooks=[(hook, zero_in_place)])
        replaced = model.run_with_hooks(tokens, fwd_hooks=[(hook, lambda z, hook: torch.zeros_like(z))])
    torch.testing.assert_close(edited, replaced)
    assert not torch.allclose(edited, clean)


@pytest.mark.parametrize("opts, message", [
    ({"n_experts": 0}, "n_experts must be at least 1"),
    ({"n_experts": 4, "top_k": 5}, "top_k must be between 1 and n_experts"),
    ({"router": "hash"}, "router 'hash' unknown"),
    ({"aux_loss_coef": -0.01}, "aux_loss_coef must be 0 or positive"),
])
def test_invalid_expert_settings_fail_at_config_time(opts, message):
    with pytest.raises(ValueError, match=message):
        MoEOptions(**opts)


def test_active_width_that_does_not_divide_is_refused():
    cfg = dataclasses.replace(_cfg(k=2), d_mlp=17, mlp_options=(("n_experts", 4), ("top_k", 2)))
    with pytest.raises(ValueError, match="does not divide"):
        MoEMLP(cfg)


def test_the_sparsity_router_takes_the_switch_loss_over_the_softmax_of_g_and_it_reaches_the_encoders():
    torch.manual_seed(6)
    layer = MoEMLP(_cfg("sparsity", "relu", m=4, k=2, aux_loss_coef=0.01))
    torch.nn.init.normal_(layer.b_enc, std=0.5)
    x = torch.randn(10, 16)
    layer(x)
    g = layer.router_scores(x)
    chosen = g.topk(2, dim=-1).indices
    f = torch.stack([(chosen == j).sum() for j in range(4)]).float() / 20
    torch.testing.assert_close(layer.aux_loss, 0.01 * 4 * (f * g.softmax(-1).mean(0)).sum())
    layer.aux_loss.backward()
    assert layer.W_enc.grad.abs().sum() > 0 and layer.b_enc.grad.abs().sum() > 0


def test_without_a_coefficient_only_the_switch_router_has_an_auxiliary_loss():
    for router in ("learned", "sparsity"):
        layer = MoEMLP(_cfg(router, "relu"))
        layer(torch.randn(6, 16))
        assert layer.aux_loss is None


def test_balanced_moex_is_moex_with_the_switch_loss_in_every_block():
    from bench import registry
    from tasks.chess.task import ChessTask

    dense = ChessTask.dense_config("tiny")
    balanced, plain = (GPT(registry.model_adapter(m).model_config(dense)) for m in ("moex-balanced", "moex"))
    assert balanced.cfg.mlp_options == tuple(sorted({**dict(plain.cfg.mlp_options), "aux_loss_coef": 0.01}.items()))
    balanced(torch.randint(0, dense.vocab_size, (2, 8)))
    assert all(block.mlp.aux_loss is not None and block.mlp.aux_loss > 0 for block in balanced.blocks)


def test_a_centred_router_scores_the_input_minus_its_running_mean_updated_only_in_training():
    torch.manual_seed(0)
    layer = MoEMLP(_cfg(router_input="centred", router_input_momentum=0.5))
    x = torch.randn(6, 16) + 3.0
    scores = []
    layer.hook_router_scores.add_hook(lambda s, hook: scores.append(s))
    layer(x)  # training: routed with the mean as it was (0), which then moves half way to this batch's mean
    torch.testing.assert_close(scores[0], layer.router_scores(x))
    torch.testing.assert_close(layer.router_input_mean, 0.5 * x.mean(0))
    layer.eval()
    layer(x)
    torch.testing.assert_close(layer.router_input_mean, 0.5 * x.mean(0))  # evaluation leaves it
    torch.testing.assert_close(scores[1], layer.router_scores(x - 0.5 * x.mean(0)))


def test_a_centred_routers_experts_still_see_the_raw_input():
    torch.manual_seed(0)
    layer = MoEMLP(_cfg(router_input="centred")).eval()
    torch.nn.init.normal_(layer.b_enc, std=0.5)
    layer.router_input_mean.fill_(2.0)  # far from zero, so experts fed the centred input would differ
    x = torch.randn(5, 16)
    seen = {}
    for name in ("chosen", "gate", "post"):
        getattr(layer, f"hook_{name}").add_hook(lambda t, hook, name=name: seen.setdefault(name, t))
    layer(x)
    by_hand = torch.zeros(5, 4, 8)
    for t in range(5):
        for e in seen["chosen"][t].tolist():
            by_hand[t, e] = seen["gate"][t, e] * torch.relu(x[t] @ layer.W_enc[e] + layer.b_enc[e])
    torch.testing.assert_close(seen["post"], by_hand.reshape(5, 32))


def test_centring_takes_a_shared_component_out_of_the_sparsity_routers_choice():
    # Hand-built: input coordinate 0 is a constant 5 every token shares; expert e's units all weigh it
    # by -1 for e = 0, 1 and +1 for e = 2, 3, so raw routing sends every token to experts 0 and 1.
    # Coordinate 1 is +1 or -1 by token; its weights (mean +1 for experts 0, 1 and -1 for 2, 3, spread
    # 0.5 over the units) make experts 2 and 3 sparser for x_1 = +1 and experts 0 and 1 for x_1 = -1.
    layer = MoEMLP(_cfg(router_input="centred", router_input_momentum=1.0))
    spread = 1.0 + 0.5 * torch.tensor([1.0, -1.0] * 4)
    with torch.no_grad():
        layer.W_enc.zero_()
        layer.W_enc[:, 0, :] = torch.tensor([-1.0, -1.0, 1.0, 1.0])[:, None]
        layer.W_enc[:, 1, :] = torch.tensor([1.0, 1.0, -1.0, -1.0])[:, None] * spread
    x = torch.zeros(8, 16)
    x[:, 0], x[:, 1] = 5.0, torch.tensor([1.0, -1.0] * 4)
    raw = layer.router_scores(x).topk(2, dim=-1).indices.sort(-1).values
    assert raw.tolist() == [[0, 1]] * 8
    layer(x)  # momentum 1: the running mean is this batch's mean
    chosen = []
    layer.hook_chosen.add_hook(lambda c, hook: chosen.append(c))
    layer.eval()
    layer(x)
    picked = chosen[0].sort(-1).values.tolist()
    assert picked == [[2, 3], [0, 1]] * 4  # now the token's own coordinate decides


def test_only_a_centred_router_carries_a_running_mean_and_it_survives_a_checkpoint(tmp_path):
    from models.checkpoint import load_model, save_model

    assert "router_input_mean" not in MoEMLP(_cfg()).state_dict()
    torch.manual_seed(0)
    model = GPT(_cfg(router_input="centred"))
    model(torch.randint(0, 32, (2, 8)))  # training mode: every block's running mean moves
    means = [block.mlp.router_input_mean.clone() for block in model.blocks]
    assert all(mean.abs().sum() > 0 for mean in means)
    save_model(tmp_path / "m", model, {})
    again, _ = load_model(tmp_path / "m", model.cfg)
    for block, mean in zip(again.blocks, means):
        torch.testing.assert_close(block.mlp.router_input_mean, mean.bfloat16().float())


def test_centred_moex_is_moex_with_a_centred_router_in_every_block():
    from bench import registry
    from tasks.chess.task import ChessTask

    dense = ChessTask.dense_config("tiny")
    centred, plain = (GPT(registry.model_adapter(m).model_config(dense)) for m in ("moex-centred", "moex"))
    expected = {**dict(plain.cfg.mlp_options), "router_input": "centred", "router_input_momentum": 0.01}
    assert centred.cfg.mlp_options == tuple(sorted(expected.items()))
    assert all(block.mlp.opts.router_input == "centred" for block in centred.blocks)
    assert all(block.mlp.opts.router_input == "raw" for block in plain.blocks)
