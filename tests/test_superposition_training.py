"""The fused training step against the straightforward one, the reused-tensor guard, and the
sampler: the same draws as sample_features, and the opt-in single draw's distribution."""

import pytest
import torch

from tasks.superposition.toy_model import FeatureSampler, Scratch, ToyModels, ToySpec, sample_features
from tasks.superposition.training import train_models

SPECS = [ToySpec(12, 1, 4, 1), ToySpec(12, 1, 4, 1, hidden="relu"), ToySpec(12, 4, 1, 2),
         ToySpec(12, 5, 2, 2, router="switch", aux_loss_coef=0.01), ToySpec(12, 4, 3, 1, hidden="relu"),
         ToySpec(12, 4, 1, 3, hidden="relu", router="sparsity")]


def _trained(spec: ToySpec, **options):
    g = torch.Generator().manual_seed(5)
    model = ToyModels(spec, 4, g)
    importance = 0.9 ** torch.arange(spec.n_features, dtype=torch.float32)
    tail = train_models(model, torch.tensor([1.0, 0.4, 0.1, 0.0]), importance, 30, 48, 1e-2, g, **options)
    return tail, [p.detach() for p in model.parameters()], g.get_state()


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"e{s.n_experts}m{s.d_expert}k{s.top_k}-{s.hidden}-{s.router}")
def test_the_fused_step_trains_what_the_straightforward_step_trains(spec):
    # Bit for bit on this machine (the same operations in the same order); a tolerance for other CPUs.
    (loss, params, state), (ref_loss, ref_params, ref_state) = _trained(spec), _trained(spec, fused=False)
    assert torch.equal(state, ref_state)  # the same random draws
    torch.testing.assert_close(loss, ref_loss, rtol=1e-5, atol=1e-6)
    for p, ref in zip(params, ref_params):
        torch.testing.assert_close(p, ref, rtol=1e-5, atol=1e-6)


def test_one_draw_is_an_option_of_the_fused_step_and_changes_the_draws():
    with pytest.raises(ValueError, match="fused"):
        _trained(SPECS[0], fused=False, one_draw=True)
    assert not torch.equal(_trained(SPECS[0], one_draw=True)[0], _trained(SPECS[0])[0])


def test_scratch_tensors_are_not_handed_out_twice_before_the_backward():
    model = ToyModels(SPECS[2], 2, torch.Generator().manual_seed(0))
    x, scratch = torch.rand(2, 8, 12), Scratch()
    x_hat = model(x, scratch)[0]
    with pytest.raises(RuntimeError, match="twice in one step"):
        model(x, scratch)
    scratch.next_step()
    model(x, scratch)  # the next step overwrites what the first step's backward needs
    with pytest.raises(RuntimeError, match="reused by a later step"):
        x_hat.sum().backward()


def test_the_sampler_draws_what_sample_features_draws():
    density = torch.tensor([1.0, 0.3, 0.05, 0.0])
    a, b = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    sampler = FeatureSampler(4, 64, 10, density, a)
    for _ in range(2):
        assert torch.equal(sampler(), sample_features(4, 64, 10, density, b))


def test_one_draw_sampling_draws_the_stated_distribution():
    # P(present) = d; a present value is U[0, 1): mean 1/2, variance 1/12, a quarter in each quarter.
    density = torch.tensor([0.0, 0.05, 0.3, 0.7, 1.0])
    x = FeatureSampler(5, 100_000, 8, density, torch.Generator().manual_seed(2), one_draw=True)()
    assert torch.isfinite(x).all() and (x >= 0).all() and (x < 1).all()
    assert (x[0] == 0).all()
    count = x[0].numel()
    for d, xi in zip(density[1:].tolist(), x[1:]):
        values = xi[xi > 0]
        assert abs(len(values) / count - d) < 4 * (d * (1 - d) / count) ** 0.5 + 1e-6, d
        assert abs(values.mean().item() - 0.5) < 4 * (1 / 12 / len(values)) ** 0.5, d
        assert abs(values.var().item() - 1 / 12) < 0.002, d
        quarters = torch.histc(values, bins=4, min=0, max=1) / len(values)
        assert (quarters - 0.25).abs().max() < 4 * (0.25 * 0.75 / len(values)) ** 0.5, d


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"e{s.n_experts}m{s.d_expert}k{s.top_k}-{s.hidden}-{s.router}")
def test_the_fused_gradients_are_the_true_gradients_in_float64(spec):
    # gradcheck compares against finite differences, not against another implementation; float64
    # also checks that the work tensors take the input's dtype.
    g = torch.Generator().manual_seed(3)
    model = ToyModels(spec, 2, g).double()
    x = torch.rand(2, 5, spec.n_features, generator=g, dtype=torch.float64) + 0.1
    names = [n for n, _ in model.named_parameters()]

    def fused(*values):
        return torch.func.functional_call(model, dict(zip(names, values)), (x,))[0]  # no scratch: many backwards

    values = [p.detach().clone().requires_grad_() for p in model.parameters()]
    assert torch.autograd.gradcheck(fused, values, atol=1e-6)


def test_a_second_backward_through_the_fused_loss_is_refused():
    from tasks.superposition.training import _WeightedSquaredError

    x, x_hat = torch.rand(2, 3, 4), torch.rand(2, 3, 4, requires_grad=True)
    loss = _WeightedSquaredError.apply(x, x_hat, torch.ones(4), None).sum()
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="second backward"):
        loss.backward()
