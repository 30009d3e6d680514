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


def _saved_sae(folder, d_in=128, hook="blocks.1.mlp.hook_post"):
    from sae_lens import TopKSAE, TopKSAEConfig
    from sae_lens.saes.sae import SAEMetadata

    TopKSAE(TopKSAEConfig(d_in=d_in, d_sae=64, k=4, metadata=SAEMetadata(hook_name=hook))).save_model(str(folder))
    return folder


def _rewrite_cfg(folder, change):
    import json

    cfg = json.loads((folder / "cfg.json").read_text())
    (folder / "cfg.json").write_text(json.dumps(change(cfg)))


WIDTHS = {"mlp": 128, "resid": 32, "attn": 32}


def test_a_folder_is_checked_from_its_files_as_saelens_reads_them(tmp_path):
    from bench.sae_store import check_folder_fits

    folder = _saved_sae(tmp_path / "sae")
    check_folder_fits(folder, -3, "mlp", 4, WIDTHS)  # blocks.1.mlp.hook_post, 128 wide
    # Another site: the hook it was trained on comes first, for that message names the site to score.
    with pytest.raises(BenchError, match=r"trained on blocks\.1\.mlp\.hook_post, but the task reads "
                                         r"blocks\.1\.hook_resid_post; score that site with ARGS='layer=1 site=mlp'"):
        check_folder_fits(folder, -3, "resid", 4, WIDTHS)
    with pytest.raises(BenchError, match=r"trained on blocks\.1\.mlp\.hook_post, but the task reads blocks\.2"):
        check_folder_fits(folder, -2, "mlp", 4, WIDTHS)
    # One that does not say where it was trained is held to its width alone.
    _rewrite_cfg(folder, lambda c: {**c, "metadata": {k: v for k, v in c["metadata"].items() if k != "hook_name"}})
    with pytest.raises(BenchError, match=r"reads 128-wide activations but site blocks\.1\.hook_resid_post is 32 wide"):
        check_folder_fits(folder, -3, "resid", 4, WIDTHS)
    # Before SAELens 6.0 the hook was a top-level hook_point, with no metadata: read as SAELens reads it.
    _rewrite_cfg(folder, lambda c: {**{k: v for k, v in c.items() if k != "metadata"},
                                    "hook_point": "blocks.2.mlp.hook_post"})
    with pytest.raises(BenchError, match=r"trained on blocks\.2\.mlp\.hook_post, but the task reads blocks\.1"):
        check_folder_fits(folder, -3, "mlp", 4, WIDTHS)
    # A 6.x file names its hook in metadata only; a stray top-level one is not what SAELens reads.
    folder = _saved_sae(tmp_path / "v6")
    _rewrite_cfg(folder, lambda c: {**c, "hook_name": "blocks.3.mlp.hook_post"})
    check_folder_fits(folder, -3, "mlp", 4, WIDTHS)


def test_a_folder_whose_cfg_disagrees_with_its_weights_is_left_for_loading_to_name(tmp_path):
    from bench.sae_store import check_folder_fits

    folder = _saved_sae(tmp_path / "sae")
    _rewrite_cfg(folder, lambda c: {**c, "d_in": 32})
    check_folder_fits(folder, -3, "mlp", 4, WIDTHS)  # no width message: loading says the folder is damaged
    (folder / "sae_weights.safetensors").write_bytes(b"junk")
    check_folder_fits(folder, -3, "resid", 4, WIDTHS)
