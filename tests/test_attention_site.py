"""site=attn: features at attn.hook_z with the heads concatenated, spliced back per head; and
dense+attn-sae, a SAELens SAE there, scored end to end and filed beside the other models."""

import os
import subprocess
import sys
from pathlib import Path

import torch

from bench import registry
from bench.model_store import load_or_train
from bench.run_target import results_variant, settings_for
from core.fidelity import fidelity
from core.results import load_result, result_path

ROOT = Path(__file__).resolve().parents[1]


def _dense_tiny():
    task = registry.task("chess")
    adapter, _, _ = load_or_train(registry.model_adapter("dense"), task, "tiny", 0, "cpu")
    return adapter, task


def test_the_attn_site_is_hook_z_with_heads_concatenated_and_splices_back_per_head():
    adapter, task = _dense_tiny()
    tokens = task.validation_tokens("tiny", 0)[:2]
    _, cache = adapter.model.run_with_cache(tokens, names_filter=["blocks.1.attn.hook_z"])
    z = cache["blocks.1.attn.hook_z"]  # (batch, pos, head, d_head)
    assert z.dim() == 4 and z.shape[2] > 1
    features = adapter.features(tokens, -3, "attn")
    assert torch.equal(features, z.reshape(*z.shape[:2], -1))
    # the model's own activation spliced back recovers all of the loss; zeroing the site does not
    out = fidelity(adapter, tokens, -3, "attn")
    assert out["loss_recovered"] == 1.0 and abs(out["explained_variance"] - 1.0) < 1e-9
    assert out["ce_zero_ablation"] != out["ce_clean"]


def test_the_attention_sae_defaults_to_its_site_and_another_site_is_a_variant():
    task = registry.task("chess")
    attn_sae = registry.model_adapter("dense+attn-sae")
    assert settings_for(attn_sae, task, []).site == "attn"
    assert results_variant(task, settings_for(attn_sae, task, []), attn_sae) is None
    assert results_variant(task, settings_for(attn_sae, task, ["site=mlp"]), attn_sae) == "site.mlp"
    dense = registry.model_adapter("dense")
    assert results_variant(task, settings_for(dense, task, ["site=attn"]), dense) == "site.attn"


def test_dense_attn_sae_trains_its_sae_on_hook_z_and_scores_end_to_end_at_tiny():
    out = subprocess.run([sys.executable, "-m", "bench", "bench", "--model", "dense+attn-sae", "--task", "chess",
                          "--preset", "tiny", "--threads", "1", "probe_games=20", "legal_move_games=5"],
                         cwd=ROOT, capture_output=True, text=True, timeout=900, env=dict(os.environ))
    assert out.returncode == 0, out.stderr[-2000:]
    record = load_result(result_path("chess", "dense+attn-sae", "tiny", 0))  # the main folder
    assert record["config"]["site"] == "attn"
    assert record["details"]["feature_hook"] == "blocks.1.attn.hook_z -> SAE encode"
    assert record["provenance"]["features_from"]["hook"] == "blocks.1.attn.hook_z"
    assert record["metrics"]["n_features"] == 4 * 128  # 4 x d_mlp latents, as every SAE here
    # a 16-step SAE on a tiny model reconstructs poorly (explained variance can be below 0); the splice
    # still ran through it, so its loss differs from the clean model's
    assert record["metrics"]["explained_variance"] <= 1 and record["metrics"]["loss_recovered"] != 1.0


def test_the_saebench_core_metrics_read_the_attn_site_with_heads_concatenated():
    from bench.core_metrics import core_metrics

    adapter, task = _dense_tiny()
    tokens = task.validation_tokens("tiny", 0)[:2]
    m = core_metrics(adapter, tokens, -3, "attn")["metrics"]
    assert m["reconstruction_quality"]["mse"] == 0 and m["model_behavior_preservation"]["kl_div_with_sae"] == 0
    assert m["token_stats"]["total_tokens_eval_sparsity_variance"] == tokens.numel()
