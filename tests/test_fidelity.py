"""Fidelity metrics (core/fidelity.py) on hand-worked cases and on splices whose answer is known."""

import math

import pytest
import torch

from adapters.dense import DenseAdapter
from core.fidelity import _Variance, fidelity
from models.config import GPTConfig
from models.gpt import GPT


def _model(seed=0):
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=32, n_ctx=16, d_model=16, n_layers=2, n_heads=2, d_mlp=64)).eval()


def test_explained_variance_by_hand():
    # x = (1, 0), (3, 0); x_hat = (2, 0) twice. E|x|^2 = 5, |E x|^2 = 4: variance 1. MSE = 1 -> 0.
    v = _Variance()
    v.add(torch.tensor([[1.0, 0.0], [3.0, 0.0]]), torch.tensor([[2.0, 0.0], [2.0, 0.0]]))
    assert v.explained() == pytest.approx(0.0)
    # Perfect reconstruction -> 1; reconstructing by the mean -> 0; batches may split anywhere.
    w = _Variance()
    w.add(torch.tensor([[1.0, 2.0]]), torch.tensor([[1.0, 2.0]]))
    w.add(torch.tensor([[3.0, 0.0]]), torch.tensor([[3.0, 0.0]]))
    assert w.explained() == pytest.approx(1.0)


class _Zero(DenseAdapter):
    def reconstruct(self, activation):
        return torch.zeros_like(activation)


class _Half(DenseAdapter):
    def reconstruct(self, activation):
        return activation / 2


def test_identity_splice_recovers_all_loss_and_zero_splice_none():
    tokens = torch.randint(0, 32, (6, 16), generator=torch.Generator().manual_seed(1))
    model = _model()
    same = fidelity(DenseAdapter(model), tokens, layer=1, site="mlp", batch_size=4)
    assert same["loss_recovered"] == pytest.approx(1.0, abs=1e-9)
    assert same["explained_variance"] == pytest.approx(1.0)
    assert same["ce_splice"] == pytest.approx(same["ce_clean"], abs=1e-9)
    assert same["perplexity"] == pytest.approx(math.exp(same["ce_clean"]))
    zero = fidelity(_Zero(model), tokens, layer=1, site="mlp", batch_size=4)
    assert zero["loss_recovered"] == pytest.approx(0.0, abs=1e-9)
    # Halving x: residual x/2, so explained variance = 1 - E|x/2|^2 / Var(x), computed here directly.
    half = fidelity(_Half(model), tokens, layer=1, site="mlp", batch_size=4)
    acts = DenseAdapter(model).activations(tokens, "blocks.1.mlp.hook_post").reshape(-1, 64).double()
    expected = 1 - (acts / 2).pow(2).sum(1).mean() / (acts.pow(2).sum(1).mean() - acts.mean(0).pow(2).sum())
    assert half["explained_variance"] == pytest.approx(expected.item(), rel=1e-6)


class _KnownLosses(DenseAdapter):
    """Per-token losses fixed by hand: clean 1, zero-ablated 3, spliced 2 on rows 0-1 and 1 on row 2."""
    def splice_is_identity(self, layer, site):  # its splice is not the identity: it has its own losses
        return False

    def loss_per_token(self, batch, *ablation):
        return torch.full((len(batch), batch.shape[1] - 1), 3.0 if ablation else 1.0)

    def spliced_logits_and_loss(self, batch, layer, site, add):
        add(torch.ones(2, 3), torch.ones(2, 3))
        rows = torch.arange(len(batch)) + self.seen
        self.seen += len(batch)
        return None, torch.where(rows < 2, 2.0, 1.0)[:, None].expand(len(batch), batch.shape[1] - 1)


def test_loss_recovered_is_over_every_token_not_a_mean_of_batch_means():
    adapter = _KnownLosses(_model())
    adapter.seen = 0
    tokens = torch.randint(0, 32, (3, 16), generator=torch.Generator().manual_seed(3))
    out = fidelity(adapter, tokens, layer=1, site="mlp", batch_size=2)
    # spliced mean over the 3 x 15 tokens: (2 + 2 + 1) / 3 = 5/3 (batch means would give 1.5);
    # recovered (zero - splice) / (zero - clean) = (3 - 5/3) / 2 = 2/3 (batch means: 0.75)
    assert out["ce_splice"] == pytest.approx(5 / 3)
    assert out["loss_recovered"] == pytest.approx(2 / 3)
    assert (out["ce_clean"], out["ce_zero_ablation"]) == (1.0, 3.0)
    assert out["perplexity_splice"] == pytest.approx(math.exp(5 / 3))
    assert out["perplexity"] == pytest.approx(math.exp(1.0))  # the clean model's, not the splice's


def test_l0_and_dead_fraction_count_the_features():
    tokens = torch.randint(0, 32, (3, 16), generator=torch.Generator().manual_seed(2))
    model = _model()
    out = fidelity(DenseAdapter(model), tokens, layer=0, site="mlp")
    acts = DenseAdapter(model).features(tokens, 0, "mlp")
    assert out["l0_fidelity"] == pytest.approx((acts > 0).sum().item() / (3 * 16))
    assert out["dead_fraction"] == pytest.approx(1 - (acts > 0).flatten(0, 1).any(0).float().mean().item())
    assert out["mostly_dead"] == float(out["dead_fraction"] > 0.5)
    silent = fidelity(_Silent(model), tokens, layer=0, site="mlp")
    assert silent["dead_fraction"] == 1.0 and silent["mostly_dead"] == 1.0


class _Silent(DenseAdapter):
    def features(self, tokens, layer, site="mlp"):
        return torch.zeros(*tokens.shape, 64)


class _SpliceRun(DenseAdapter):
    """Neurons with the splice run anyway, as fidelity does for features that rebuild their activation."""
    def splice_is_identity(self, layer, site):
        return False


def _moex(seed=0):
    from adapters.moe import MoEXAdapter

    torch.manual_seed(seed)
    cfg = MoEXAdapter.model_config(GPTConfig(vocab_size=32, n_ctx=16, d_model=16, n_layers=2, n_heads=2, d_mlp=64))
    return GPT(cfg).eval()


@pytest.mark.parametrize("kind", ["dense", "moex"])
@pytest.mark.parametrize("site", ["mlp", "attn"])
def test_an_identity_splice_is_skipped_with_the_numbers_of_running_it(kind, site):
    from adapters.moe import MoEXAdapter

    model, adapter_class = (_model(), DenseAdapter) if kind == "dense" else (_moex(), MoEXAdapter)
    run_anyway = type("SpliceRun", (adapter_class,), {"splice_is_identity": _SpliceRun.splice_is_identity})
    assert adapter_class(model).splice_is_identity(1, site)
    assert not _Half(model).splice_is_identity(1, site)
    tokens = torch.randint(0, 32, (5, 16), generator=torch.Generator().manual_seed(4))
    skipped = fidelity(adapter_class(model), tokens, layer=1, site=site, batch_size=2)
    run = fidelity(run_anyway(model), tokens, layer=1, site=site, batch_size=2)
    # The features read in the zero ablation's pass are those a separate pass reads, bit for bit.
    for metric in ("ce_clean", "ce_zero_ablation", "l0_fidelity", "dead_fraction", "mostly_dead"):
        assert skipped[metric] == run[metric], metric
    # Running it puts back what it read: MoE-X's z is then built densely, equal within float rounding.
    assert skipped["ce_splice"] == skipped["ce_clean"]
    assert run["ce_splice"] == pytest.approx(skipped["ce_splice"], abs=1e-6)
    assert run["explained_variance"] == pytest.approx(skipped["explained_variance"], abs=1e-6)
    assert skipped["explained_variance"] == 1.0 and skipped["loss_recovered"] == 1.0
