"""The GPT speaks TransformerLens's hook grammar: run_with_cache and run_with_hooks work on it."""

import pytest
import torch

from adapters.dense import DenseAdapter
from core.adapter import FeatureAdapter
from core.errors import BenchError
from core.quiet_imports import hook_points
from models.gpt import GPT
from tasks.chess.task import ChessTask


def _adapter():
    torch.manual_seed(0)
    return DenseAdapter(GPT(DenseAdapter.model_config(ChessTask.dense_config("tiny"))))


def test_run_with_cache_exposes_transformer_lens_names():
    adapter = _adapter()
    tokens = torch.randint(0, 32, (2, 16))
    logits, cache = adapter.model.run_with_cache(tokens)
    assert logits.shape == (2, 16, 32)
    for name in ("hook_embed", "blocks.0.hook_resid_pre", "blocks.1.mlp.hook_post", "blocks.3.hook_resid_post",
                 "blocks.2.attn.hook_z"):
        assert name in cache
    assert cache["blocks.1.mlp.hook_post"].shape == (2, 16, 128)
    assert cache["blocks.2.attn.hook_z"].shape == (2, 16, 2, 16)


def test_features_are_the_mlp_hidden_units_and_splicing_them_back_is_exact():
    adapter = _adapter()
    tokens = torch.randint(0, 32, (2, 16))
    feats = adapter.features(tokens, layer=-3)
    assert feats.shape == (2, 16, 128)
    hook = adapter.feature_hook(-3, "mlp")
    same, _ = adapter.logits_and_loss(tokens, hook, lambda a: a)
    assert torch.equal(same, adapter.logits(tokens))
    zeroed, _ = adapter.logits_and_loss(tokens, hook, torch.zeros_like)
    assert not torch.allclose(zeroed, adapter.logits(tokens))


def test_stop_at_layer_returns_nothing_but_fills_the_cache():
    adapter = _adapter()
    _, cache = adapter.model.run_with_cache(torch.randint(0, 32, (1, 8)), names_filter=["blocks.0.mlp.hook_post"],
                                            stop_at_layer=1)
    assert cache["blocks.0.mlp.hook_post"].shape == (1, 8, 128)


def test_unknown_site_and_layer_are_clear_errors():
    import pytest

    from core.errors import BenchError

    adapter = _adapter()
    with pytest.raises(BenchError, match="layer 9 does not exist: the model has 4 blocks"):
        adapter.feature_hook(9, "mlp")
    with pytest.raises(BenchError, match="hook 'blocks.0.nope' does not exist"):
        FeatureAdapter.activations(adapter, torch.zeros(1, 4, dtype=torch.long), "blocks.0.nope")


def test_a_feature_read_is_the_cached_activation_and_stops_the_pass_there():
    adapter = _adapter()
    tokens = torch.randint(0, 32, (2, 16))
    _, cache = adapter.model.run_with_cache(tokens)
    assert torch.equal(adapter.activations(tokens, "blocks.1.mlp.hook_post"), cache["blocks.1.mlp.hook_post"])
    reached = []
    adapter.model.blocks[1].hook_resid_post.add_hook(lambda act, hook: reached.append(hook.name), is_permanent=True)
    adapter.activations(tokens, "blocks.1.mlp.hook_post")
    assert reached == []  # the block's residual after the MLP was never computed
    assert not adapter.model.blocks[1].mlp.hook_post._forward_hooks  # the reading hook is gone afterwards


def test_a_hook_the_forward_pass_never_reaches_is_one_named_error():
    class Unused(hook_points.HookedRootModule):
        def __init__(self):
            super().__init__()
            self.used, self.unused = hook_points.HookPoint(), hook_points.HookPoint()
            self.setup()

        def forward(self, x, **_):
            return self.used(x)

    with pytest.raises(BenchError, match="hook 'unused' was never reached"):
        FeatureAdapter(Unused()).activations(torch.zeros(1, 2), "unused")


@pytest.mark.parametrize("kind", ["dense", "moex"])
@pytest.mark.parametrize("site, layer, layers", [("mlp", -3, [1]), ("attn", 2, [0, 3]), ("mlp", 3, [0])])
def test_features_and_residual_from_one_pass_are_the_two_reads(kind, site, layer, layers):
    from adapters.moe import MoEXAdapter

    adapter_class = DenseAdapter if kind == "dense" else MoEXAdapter
    torch.manual_seed(0)
    adapter = adapter_class(GPT(adapter_class.model_config(ChessTask.dense_config("tiny"))).eval())
    tokens = torch.randint(0, 32, (3, 16))
    features, residual = adapter.features_and_residual(tokens, layer, site, layers)
    # Reading the features changes nothing downstream, for MoE-X too (a z only read: models/moe.py).
    assert torch.equal(features, adapter.features(tokens, layer, site))
    assert torch.equal(residual, adapter.residual(tokens, layers))


def test_features_computed_from_an_activation_are_read_in_their_own_pass():
    class Doubled(DenseAdapter):  # features computed from the activation, as an SAE's encoder does
        def features(self, tokens, layer, site="mlp"):
            return 2 * super().features(tokens, layer, site)

    adapter = Doubled(_adapter().model)
    tokens = torch.randint(0, 32, (2, 16))
    features, residual = adapter.features_and_residual(tokens, -3, "mlp", [0, 2])
    assert torch.equal(features, 2 * DenseAdapter(adapter.model).features(tokens, -3))
    assert torch.equal(residual, adapter.residual(tokens, [0, 2]))
