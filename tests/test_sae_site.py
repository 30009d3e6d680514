"""An SAE trained on one hook, read at another: refused with the fix that works on this model."""

from types import SimpleNamespace

import pytest

from bench.sae_store import check_sae_site
from core.errors import BenchError


def _sae(hook_name):
    return SimpleNamespace(cfg=SimpleNamespace(metadata=SimpleNamespace(hook_name=hook_name)))


def test_the_same_tensor_by_another_name_is_accepted():
    check_sae_site(_sae("blocks.2.hook_resid_pre"), "SAE x", "blocks.1.hook_resid_post", n_layers=4)
    check_sae_site(_sae(None), "SAE x", "blocks.1.mlp.hook_post", n_layers=4)  # no record: nothing to compare


def test_another_site_of_this_model_is_named_as_the_args_to_score_it():
    with pytest.raises(BenchError, match=r"trained on blocks\.2\.mlp\.hook_post, but the task reads "
                                         r"blocks\.1\.mlp\.hook_post; score that site with ARGS='layer=2 site=mlp'$"):
        check_sae_site(_sae("blocks.2.mlp.hook_post"), "SAE x", "blocks.1.mlp.hook_post", n_layers=4)


def test_a_block_this_model_lacks_is_not_offered_as_a_fix():
    with pytest.raises(BenchError, match=r"this model has 4 blocks \(0-3\), so the SAE was trained on another model"):
        check_sae_site(_sae("blocks.9.mlp.hook_post"), "SAE x", "blocks.1.mlp.hook_post", n_layers=4)
