"""dense+sae: SAEs trained by SAELens on the tiny dense chess model, read through our adapter, with our
fidelity metrics checked against SAELens's own run_evals on the same SAE and tokens."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bench import registry
from bench.model_store import load_or_train
from core.errors import BenchError
from core.fidelity import fidelity
from core.results import load_result, result_path
from tasks.chess.config import ChessConfig
from bench.sae_store import attach_features

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def task():
    return registry.task("chess")


@pytest.fixture(scope="module")
def adapter(task):
    adapter, _, _ = load_or_train(registry.model_adapter("dense+sae"), task, "tiny", 0, "cpu")
    attach_features(adapter, task, "tiny", 0, ChessConfig(), "cpu", role="trained")
    return adapter


def test_latents_are_saelens_encode_of_the_site(adapter, task):
    tokens = task.training_data("tiny", 0).val_tokens[:3]
    latents = adapter.features(tokens, -3, "mlp")
    site = adapter.activations(tokens, "blocks.1.mlp.hook_post")
    assert latents.shape == (3, 256, 4 * adapter.model.cfg.d_mlp)
    assert torch.equal(latents, adapter.sae.encode(site))
    assert ((latents > 0).sum(-1) <= 32).all()  # topk, k = 32


def test_saved_sae_is_saelens_format_in_bf16(adapter):
    from sae_lens import SAE
    from safetensors import safe_open

    folder = Path(os.environ["MOEXBENCH_CHECKPOINTS"]) / "chess" / "dense_sae-topk-tiny"
    sae = SAE.load_from_disk(str(folder))
    assert sae.cfg.architecture() == "topk" and sae.cfg.metadata.hook_name == "blocks.1.mlp.hook_post"
    with safe_open(str(folder / "sae_weights.safetensors"), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.bfloat16}
    assert json.loads((folder / "moexbench.json").read_text())["model_weights_sha256"]


def test_loss_recovered_and_explained_variance_agree_with_saelens_run_evals(adapter, task):
    from datasets import Dataset
    from sae_lens import ActivationsStore, run_evals
    from sae_lens.evals import EvalConfig
    from sae_lens.training.activation_scaler import ActivationScaler

    rows = task.training_data("tiny", 0).val_tokens[:12]
    hook = "blocks.1.mlp.hook_post"
    store = ActivationsStore(model=adapter.model, dataset=Dataset.from_dict({"tokens": rows.tolist()}),
                             streaming=False, hook_name=hook, hook_head_index=None, context_size=rows.shape[1],
                             d_in=adapter.model.cfg.d_mlp, n_batches_in_buffer=2, total_training_tokens=len(rows),
                             store_batch_size_prompts=4, train_batch_size_tokens=1024, prepend_bos=False,
                             normalize_activations="none", device=torch.device("cpu"), dtype="float32")
    evals = EvalConfig(batch_size_prompts=4, n_eval_reconstruction_batches=3, n_eval_sparsity_variance_batches=3,
                       compute_ce_loss=True, compute_variance_metrics=True, compute_sparsity_metrics=True)
    theirs, _ = run_evals(adapter.sae, store, adapter.model, ActivationScaler(), evals, exclude_special_tokens=False)
    ours = fidelity(adapter, rows, -3, "mlp", batch_size=4)
    perf = theirs["model_performance_preservation"]
    assert ours["loss_recovered"] == pytest.approx(perf["ce_loss_score"], abs=1e-4)
    assert ours["ce_clean"] == pytest.approx(perf["ce_loss_without_sae"], abs=1e-4)
    assert ours["ce_splice"] == pytest.approx(perf["ce_loss_with_sae"], abs=1e-4)
    assert ours["explained_variance"] == pytest.approx(theirs["reconstruction_quality"]["explained_variance"], abs=1e-4)
    assert ours["l0_fidelity"] == pytest.approx(theirs["sparsity"]["l0"], abs=1e-4)


def test_an_sae_of_the_wrong_site_or_width_names_the_setting_or_the_valid_sites(adapter, task, monkeypatch, tmp_path):
    import json
    import shutil

    other = registry.model_adapter("dense+sae")(adapter.model)
    saved = Path(os.environ["MOEXBENCH_CHECKPOINTS"]) / "chess" / "dense_sae-topk-tiny"
    monkeypatch.setenv("MOEXBENCH_SAE_PATH", str(saved))
    # it records the hook it was trained on: the message names the setting that reads it
    with pytest.raises(BenchError, match=r"trained on blocks\.1\.mlp\.hook_post, but the task reads "
                                         r"blocks\.1\.hook_resid_post; score that site with ARGS='layer=1 site=mlp'"):
        attach_features(other, task, "tiny", 0, ChessConfig(site="resid"), "cpu", role="trained")
    # one that does not say where it was trained is held to its width, and told the sites of that width
    shutil.copytree(saved, tmp_path / "no-hook")
    cfg = json.loads((tmp_path / "no-hook" / "cfg.json").read_text())
    cfg["metadata"].pop("hook_name")
    (tmp_path / "no-hook" / "cfg.json").write_text(json.dumps(cfg))
    monkeypatch.setenv("MOEXBENCH_SAE_PATH", str(tmp_path / "no-hook"))
    with pytest.raises(BenchError, match=r"blocks\.1\.hook_resid_post is 32 wide.*blocks\.1\.mlp\.hook_post \(128 wide\)"):
        attach_features(other, task, "tiny", 0, ChessConfig(site="resid"), "cpu", role="trained")
    monkeypatch.setenv("MOEXBENCH_SAE_PATH", str(saved))
    attach_features(other, task, "tiny", 0, ChessConfig(), "cpu", role="trained")  # the right site loads
    assert "MOEXBENCH_SAE_PATH" in other.sae_source["source"]
    with pytest.raises(BenchError, match="reads blocks.1.mlp.hook_post, not blocks.1.hook_resid_post"):
        other.features(torch.zeros(1, 4, dtype=torch.long), -3, "resid")
    monkeypatch.setenv("MOEXBENCH_SAE_PATH", str(tmp_path))
    with pytest.raises(BenchError, match="not a SAELens SAE folder"):
        attach_features(other, task, "tiny", 0, ChessConfig(), "cpu", role="trained")


def test_a_stale_sae_is_retrained_not_reused(adapter, task, capsys):
    fresh = registry.model_adapter("dense+sae")(adapter.model)
    attach_features(fresh, task, "tiny", 0, ChessConfig(), "cpu", role="trained")
    assert "training" not in capsys.readouterr().out  # record matches: loaded
    with torch.no_grad():
        changed = registry.model_adapter("dense+sae")(type(adapter.model)(adapter.model.cfg))
    attach_features(changed, task, "tiny", 0, ChessConfig(site="resid"), "cpu", role="random")
    assert "training a topk SAE" in capsys.readouterr().out
    assert changed.sae.cfg.d_in == adapter.model.cfg.d_model


@pytest.mark.parametrize("name", ["dense+sae:standard", "dense+sae:batchtopk", "dense+sae:jumprelu", "dense+sae:gated"])
def test_every_architecture_trains_and_encodes(name, adapter, task):
    other = registry.model_adapter(name)(adapter.model)
    attach_features(other, task, "tiny", 0, ChessConfig(), "cpu", role="trained")
    latents = other.features(task.training_data("tiny", 0).val_tokens[:2], -3, "mlp")
    assert latents.shape[-1] == 512 and torch.isfinite(latents).all()
    out = fidelity(other, task.training_data("tiny", 0).val_tokens[:4], -3, "mlp")
    assert 0 < out["explained_variance"] <= 1


@pytest.mark.parametrize("name,architecture,file_name", [("dense+sae", "topk", "dense+sae.json"),
                                                         ("dense+sae:standard", "standard", "dense+sae-standard.json")])
def test_make_bench_dense_sae_tiny_end_to_end(name, architecture, file_name):
    out = subprocess.run([sys.executable, "-m", "bench", "bench", "--model", name, "--preset", "tiny",
                          "--threads", "1", "probe_games=20", "legal_move_games=5"],
                         cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    record = load_result(result_path("chess", name, "tiny", 0))
    assert record["model"] == name and Path(result_path("chess", name, "tiny", 0)).name == file_name
    m = record["metrics"]
    for name in ("coverage", "reconstruction", "loss_recovered", "explained_variance", "dead_fraction", "mostly_dead",
                 "coverage_random_init", "alive_fraction_random_init", "floor_mostly_dead", "perplexity_splice"):
        assert name in m, name
    assert m["n_features"] == 512 and record["provenance"]["features_from"]["settings"]["architecture"] == architecture
    # the weights it was scored on are the ones its SAE was trained over
    assert record["provenance"]["model_weights_sha256"] == record["provenance"]["features_from"]["model_weights_sha256"]
    # and the SAE's own weights file is named by its digest
    from bench.model_store import checkpoint_stem
    from models.checkpoint import file_sha256

    weights = checkpoint_stem("chess", f"dense+sae-{architecture}", "tiny", 0) / "sae_weights.safetensors"
    assert record["provenance"]["features_from"]["sae_sha256"] == file_sha256(weights)


def test_sparsity_sweep_writes_one_point_per_value(adapter):
    from core.results import task_dir
    from experiments.sae_sweep import main

    assert main(["--arch", "topk", "--values", "4,8", "--preset", "tiny", "--threads", "1", "probe_games=20"]) == 0
    record = json.loads((task_dir("chess", "tiny") / "sae_sweep" / "topk.json").read_text())
    assert record["knob"] == "k" and [p["k"] for p in record["points"]] == [4, 8]
    # topk: at most k latents per token (fewer only where a top-k pre-activation is negative)
    assert [p["metrics"]["l0"] <= p["k"] for p in record["points"]] == [True, True]
    assert record["points"][0]["metrics"]["l0"] < record["points"][1]["metrics"]["l0"]
    assert main(["--arch", "nope", "--values", "1"]) == 2


@pytest.mark.parametrize("quiet", [True, False])
def test_saelens_training_bar_follows_our_quiet_switch(quiet, adapter, task, monkeypatch, capsys):
    from bench.sae_training import settings_for, train_sae

    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("MOEXBENCH_QUIET", "1" if quiet else "0")
    settings = settings_for("topk", "tiny", tokens=2048, batch_tokens=1024)
    train_sae(adapter.model, "blocks.1.mlp.hook_post", 64, settings, task.training_data("tiny", 0).batch_fn, 0, "cpu")
    err = capsys.readouterr().err
    assert ("Training SAE" in err) is not quiet and ("Estimating norm" in err) is not quiet
