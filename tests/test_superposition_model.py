"""The batched toy models: routing, the MoE-X router on a constructed case, k-hot gates, the models'
independence inside a batch, and the task end to end at the tiny preset."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from core.results import load_result, result_path
from tasks.superposition.toy_model import ToyModels, ToySpec, k_hot_gate, sample_features

ROOT = Path(__file__).resolve().parents[1]


def test_routing_weights_have_k_non_zeros_summing_to_one():
    g = torch.Generator().manual_seed(0)
    for router in ("learned", "sparsity"):
        model = ToyModels(ToySpec(12, 6, 2, 3, hidden="relu", router=router), 3, g)
        x = sample_features(3, 50, 12, torch.tensor([1.0, 0.5, 0.2]), g)
        weights, top, _ = model.routing(x)
        assert ((weights > 0).sum(-1) == 3).all() and torch.allclose(weights.sum(-1), torch.ones(3, 50))
        assert torch.equal((weights > 0), torch.zeros_like(weights).scatter(-1, top, 1.0).bool())


def test_sparsity_router_picks_the_expert_expected_to_fire_least():
    # Three experts of 4 hidden units over 2 features. On x = (1, 0): expert 0's units all have
    # weight +1 (all fire), expert 1's are mixed, expert 2's all -1 (none fire) -> expert 2 wins.
    model = ToyModels(ToySpec(2, 3, 4, 1, hidden="relu", router="sparsity"), 1, torch.Generator().manual_seed(0))
    with torch.no_grad():
        model.W.zero_()
        model.W[0, 0, 0] = 1.0
        model.W[0, 1, 0] = torch.tensor([1.0, -1.0, 1.5, -1.5])
        model.W[0, 2, 0] = -1.0
    scores = model.router_scores(torch.tensor([[[1.0, 0.0]]]))[0, 0]
    assert scores.argmax().item() == 2 and scores.argmin().item() == 0
    assert model.routing(torch.tensor([[[1.0, 0.0]]]))[1].item() == 2


def test_k_hot_gate_gives_each_expert_its_own_features():
    gate = k_hot_gate(2, 4, 12, torch.Generator().manual_seed(0))
    assert (gate.sum(-1) == 3).all() and (gate.sum(1) == 1).all()  # 3 features each, each feature once
    with pytest.raises(ValueError, match="divisible"):
        k_hot_gate(1, 5, 12, torch.Generator())


def test_models_in_a_batch_are_independent():
    g = torch.Generator().manual_seed(1)
    model = ToyModels(ToySpec(10, 4, 2, 2, router="switch", aux_loss_coef=0.01), 3, g)
    x = sample_features(3, 32, 10, torch.tensor([0.3, 0.3, 0.3]), g)
    x_hat, _, aux = model(x)
    ((x - x_hat) ** 2).mean(1).sum(-1)[1].add(aux[1]).backward()
    for p in (model.W, model.b, model.gate):
        assert p.grad[1].abs().sum() > 0 and p.grad[0].abs().sum() == 0 and p.grad[2].abs().sum() == 0


@pytest.mark.parametrize("hidden", ["linear", "relu"])
@pytest.mark.parametrize("router", ["learned", "switch", "sparsity"])
def test_decoding_only_chosen_experts_equals_decoding_every_expert(hidden, router):
    g = torch.Generator().manual_seed(int(torch.randint(0, 2**31, ())))  # fresh inputs each run
    spec = ToySpec(12, 5, 3, 2, hidden=hidden, router=router, aux_loss_coef=0.01 if router == "switch" else 0.0)
    model = ToyModels(spec, 3, g)
    x = sample_features(3, 64, 12, torch.tensor([0.2, 0.5, 1.0]), g)
    grads = []
    for forward in (model.forward, model.forward_every_expert):
        model.zero_grad()
        x_hat, weights, aux = forward(x)
        ((x - x_hat) ** 2).sum().add(aux.sum()).backward()
        grads.append((x_hat.detach(), weights.detach(), [p.grad.clone() for p in model.parameters()]))
    (fast, w_fast, g_fast), (ref, w_ref, g_ref) = grads
    assert torch.equal(w_fast, w_ref)
    torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-6)
    for a, b in zip(g_fast, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def _bench(*args):
    return subprocess.run([sys.executable, "-m", "bench", "bench", "--task", "superposition", "--preset", "tiny",
                           "--threads", "1", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_superposition_task_end_to_end_at_the_tiny_preset():
    out = _bench("--model", "moex", "eval_samples=512")
    assert out.returncode == 0, out.stderr[-2000:]
    record = load_result(result_path("superposition", "moex", "tiny", 0))
    m = record["metrics"]
    assert {"features_per_dim", "features_per_dim_e2m2k1", "features_per_dim_e4m1k2", "monosemantic_fraction",
            "features_per_dim_max_jump", "loss"} <= set(m)
    assert record["details"]["toy_form"] == {"moe": True, "hidden": "relu", "router": "sparsity", "aux_loss_coef": 0.0}
    assert len(record["details"]["sweep"]) == 2 * 2  # two configurations x two densities x one seed
    assert (result_path("superposition", "moex", "tiny", 0).parent / "features_per_dimension.png").exists()
    bad = _bench("--model", "dense+sae")
    assert bad.returncode == 2 and "no toy counterpart" in bad.stderr and bad.stderr.count("\n") == 1


def test_a_decaying_importance_is_its_own_experiment_in_its_own_folder():
    out = _bench("--model", "dense", "importance_decay=0.5", "eval_samples=512", "specialisation=false")
    assert out.returncode == 0, out.stderr[-2000:]
    # without the specialisation experiment too, so its folder says both
    path = result_path("superposition", "dense", "tiny", 0, "importance-0.5_specialisation.False")
    record = load_result(path)
    assert record["config"]["importance_decay"] == 0.5
    assert any("I_i = 0.5^i" in d for d in record["provenance"]["deviations"])
    assert (path.parent / "summary.md").exists() and (path.parent / "features_per_dimension.png").exists()
    # Same seed and initial weights as the uniform sweep: only the loss weighting differs, so the
    # trained models must too.
    assert _bench("--model", "dense", "eval_samples=512").returncode == 0
    uniform = load_result(result_path("superposition", "dense", "tiny", 0))
    assert uniform["config"]["importance_decay"] == 1.0
    assert not any("importance_decay" in d for d in uniform["provenance"]["deviations"])
    assert uniform["metrics"]["loss"] != record["metrics"]["loss"]


def test_a_load_balancing_coefficient_on_the_sparsity_router_is_refused():
    with pytest.raises(ValueError, match="the toy's sparsity router does not compute"):
        ToySpec(12, 5, 3, 2, router="sparsity", aux_loss_coef=0.01)


def test_moex_variants_the_toy_cannot_build_are_refused_in_one_line_not_run_as_plain_moex():
    from bench import registry
    from core.errors import BenchError
    from tasks.superposition.task import toy_form

    with pytest.raises(BenchError, match="moex-centred \\(router input centred\\) has no toy counterpart"):
        toy_form(registry.model_adapter("moex-centred"))
    with pytest.raises(BenchError, match="moex-balanced \\(sparsity router with a load-balancing loss\\) has no"):
        toy_form(registry.model_adapter("moex-balanced"))
    assert toy_form(registry.model_adapter("switch"))["aux_loss_coef"] == 0.01
