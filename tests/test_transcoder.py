"""dense+transcoder: a SAELens Transcoder with a TopK activation from the MLP's input (ln2.hook_normalized)
to its output (hook_mlp_out). Hand-worked case: a transcoder holding a ReLU MLP's own weights with k =
the MLP's width is that MLP, so its splice recovers all of the loss; with a smaller k it is not."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bench import registry
from bench import transcoder_training as tt
from bench.model_store import load_or_train
from core.errors import BenchError
from core.fidelity import fidelity
from core.results import load_result, result_path
from models.gpt import GPT

ROOT = Path(__file__).resolve().parents[1]


def _relu_model_and_tokens():
    task = registry.task("chess")
    dense, _, _ = load_or_train(registry.model_adapter("dense"), task, "tiny", 0, "cpu")
    torch.manual_seed(0)
    model = GPT(dataclasses.replace(dense.model.cfg, act_fn="relu")).eval()
    return model, task.validation_tokens("tiny", 0)[:4]


def _mlp_as_transcoder(model, layer: int, k: int):
    mlp = model.blocks[layer].mlp
    d_mlp, d_model = mlp.W_in.weight.shape
    transcoder = tt.new_transcoder(d_model, d_mlp, d_model, k, layer)
    with torch.no_grad():
        transcoder.W_enc.copy_(mlp.W_in.weight.T)
        transcoder.b_enc.copy_(mlp.W_in.bias)
        transcoder.W_dec.copy_(mlp.W_out.weight.T)
        transcoder.b_dec.copy_(mlp.W_out.bias)
    return transcoder.eval()


def _adapter(model, transcoder, layer: int):
    adapter = registry.model_adapter("dense+transcoder")(model)
    adapter.use_sae(transcoder, tt.hooks(layer)[0], {"source": "test"})
    return adapter


def test_the_hooks_are_the_mlps_input_and_output():
    model, tokens = _relu_model_and_tokens()
    with torch.no_grad():  # a layer norm whose affine part shows: the hook is after it, as the MLP reads it
        model.blocks[1].ln2.weight.uniform_(0.5, 2.0)
        model.blocks[1].ln2.bias.uniform_(-1.0, 1.0)
    read, write = tt.hooks(1)
    _, cache = model.run_with_cache(tokens, names_filter=[read, write, "blocks.1.hook_resid_mid"])
    ln2 = model.blocks[1].ln2
    assert torch.allclose(cache[read], torch.nn.functional.layer_norm(
        cache["blocks.1.hook_resid_mid"], ln2.normalized_shape, ln2.weight, ln2.bias))
    assert torch.allclose(model.blocks[1].mlp(cache[read]), cache[write])


def test_a_transcoder_holding_the_mlps_weights_splices_in_exactly():
    model, tokens = _relu_model_and_tokens()
    d_mlp = model.cfg.d_mlp
    exact = fidelity(_adapter(model, _mlp_as_transcoder(model, 1, d_mlp), 1), tokens, 1, "mlp")
    assert exact["ce_splice"] == pytest.approx(exact["ce_clean"], abs=1e-5)
    assert exact["loss_recovered"] == pytest.approx(1.0, abs=1e-3)
    assert exact["explained_variance"] == pytest.approx(1.0, abs=1e-5)
    # the ablation zeroes the MLP's output (what the splice replaces), not its hidden units
    zeroed = model.run_with_hooks(tokens, fwd_hooks=[("blocks.1.hook_mlp_out", lambda a, hook: torch.zeros_like(a))],
                                  return_type="loss", loss_per_token=True)
    assert exact["ce_zero_ablation"] == pytest.approx(zeroed.double().mean().item(), abs=1e-6)
    # keeping 4 of the MLP's units per token: each token's latents are its 4 largest ReLU units, and the
    # splice is no longer the MLP
    adapter = _adapter(model, _mlp_as_transcoder(model, 1, 4), 1)
    latents = adapter.features(tokens, 1, "mlp")
    _, cache = model.run_with_cache(tokens, names_filter=["blocks.1.mlp.hook_post"])
    units = cache["blocks.1.mlp.hook_post"]
    assert ((latents > 0).sum(-1) <= 4).all()
    top = units.topk(4, dim=-1).values
    assert torch.allclose(latents.topk(4, dim=-1).values, top.relu(), atol=1e-5)
    cut = fidelity(adapter, tokens, 1, "mlp")
    assert cut["explained_variance"] < 0.999 and cut["l0_fidelity"] <= 4


def test_the_aux_loss_worked_by_hand():
    # d_out 2 -> k_aux 1: of the dead latents 1, 2, 3 the largest pre-activation (2.0, latent 2) alone
    # reconstructs the residual [1, 1] as 2 x [1, 0.5] = [2, 1]: error [1, 0], loss 1 (scale min(3/1, 1)).
    W_dec = torch.tensor([[9.0, 9.0], [0.0, 1.0], [1.0, 0.5], [5.0, 5.0]])
    dead = torch.tensor([False, True, True, True])
    assert tt.topk_aux_loss(torch.tensor([[3.0, 1.0, 2.0, -1.0]]), dead, torch.tensor([[1.0, 1.0]]), W_dec) == 1.0
    # d_out 4 -> k_aux 2 but one latent dead: scale 1/2; its pre-activation -2 gives -2 x e1 against a
    # zero residual on the first token (4) and the second token's -1 x e1 (1): 0.5 x mean(4, 1) = 1.25.
    W_dec = torch.tensor([[7.0, 7.0, 7.0, 7.0], [1.0, 0.0, 0.0, 0.0]])
    loss = tt.topk_aux_loss(torch.tensor([[0.5, -2.0], [3.0, -1.0]]), torch.tensor([False, True]),
                            torch.zeros(2, 4), W_dec)
    assert loss == pytest.approx(1.25)
    assert tt.topk_aux_loss(torch.ones(3, 2), torch.tensor([False, False]), torch.ones(3, 4), W_dec) == 0


def test_the_aux_loss_is_saelens_topk_aux_loss():
    from sae_lens.saes.topk_sae import TopKTrainingSAE, TopKTrainingSAEConfig

    torch.manual_seed(0)
    sae = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=8, d_sae=32, k=3))
    with torch.no_grad():  # unit decoder rows, as our trainer keeps them (SAELens may divide by the norms)
        sae.W_dec.div_(sae.W_dec.norm(dim=-1, keepdim=True))
    sae_in, sae_out, hidden_pre = torch.randn(5, 8), torch.randn(5, 8), torch.randn(5, 32)
    for n_dead in (0, 2, 4, 20):  # fewer and more dead latents than k_aux = 4
        dead = torch.zeros(32, dtype=torch.bool)
        dead[torch.randperm(32)[:n_dead]] = True
        theirs = sae.calculate_topk_aux_loss(sae_in, sae_out, hidden_pre, dead)
        ours = tt.topk_aux_loss(hidden_pre, dead, (sae_in - sae_out), sae.W_dec.detach())
        assert ours.item() == pytest.approx(theirs.item(), rel=1e-6)


def test_training_marks_latents_dead_after_the_window_and_feeds_them_to_the_aux_loss(monkeypatch):
    from bench.sae_training import SAESettings

    model, tokens = _relu_model_and_tokens()
    seen = []  # per step: (latents counted dead, the aux term)
    real = tt.topk_aux_loss

    def spy(hidden_pre, dead, residual, W_dec):
        loss = real(hidden_pre, dead, residual, W_dec)
        seen.append((int(dead.sum()), loss.item()))
        return loss

    monkeypatch.setattr(tt, "topk_aux_loss", spy)
    monkeypatch.setattr(tt, "dead_feature_window", lambda n_steps: 1)  # dead after more than 1 silent step
    settings = SAESettings("topk", tokens=4 * 64, batch_tokens=64, lr=1e-3, k=2)
    tt.train_transcoder(model, 1, 512, settings, lambda step: tokens[:, :16], seed=0)
    dead = [n for n, _ in seen]
    # steps 0 and 1: no latent has been silent for more than one step; from step 2 on, 512 latents and
    # 64 tokens x k=2 leave most of them silent, and those feed the aux term
    assert dead[:2] == [0, 0] and all(n > 0 for n in dead[2:]), dead
    assert all(loss == 0 for _, loss in seen[:2]) and all(loss > 0 for _, loss in seen[2:]), seen


def test_saved_in_saelens_transcoder_format_and_loaded_with_its_topk(tmp_path):
    model, tokens = _relu_model_and_tokens()
    transcoder = _mlp_as_transcoder(model, 1, 4)
    tt.save_transcoder(transcoder, tmp_path / "tc", {"k": 4})
    cfg = json.loads((tmp_path / "tc" / "cfg.json").read_text())
    assert cfg["architecture"] == "transcoder" and cfg["d_out"] == model.cfg.d_model
    assert (cfg["metadata"]["hook_name"], cfg["metadata"]["hook_name_out"]) == tt.hooks(1)
    from sae_lens import SAE
    from sae_lens.saes.transcoder import Transcoder

    assert isinstance(SAE.load_from_disk(str(tmp_path / "tc")), Transcoder)  # SAELens reads it back
    loaded = tt.load_transcoder(tmp_path / "tc", 1, model.cfg.d_model)
    x = torch.randn(8, model.cfg.d_model)
    assert ((loaded.encode(x) > 0).sum(-1) <= 4).all()  # its TopK, from our record
    assert torch.allclose(loaded(x), transcoder.float()(x), atol=0.05)  # bf16 weights


def test_bad_transcoders_are_refused_in_one_line(tmp_path):
    model, _ = _relu_model_and_tokens()
    with pytest.raises(BenchError, match="between 1 and its width"):
        tt.new_transcoder(model.cfg.d_model, 64, model.cfg.d_model, 65, 1)
    tt.save_transcoder(_mlp_as_transcoder(model, 1, 4), tmp_path / "tc", {"k": 4})
    with pytest.raises(BenchError, match="fitted on another model"):
        tt.load_transcoder(tmp_path / "tc", 1, model.cfg.d_model * 2)
    with pytest.raises(BenchError, match="not a transcoder of block 0"):
        tt.load_transcoder(tmp_path / "tc", 0, model.cfg.d_model)
    with pytest.raises(BenchError, match="its only site is mlp"):
        _adapter(model, _mlp_as_transcoder(model, 1, 4), 1).features(torch.zeros(1, 2, dtype=torch.long), 1, "resid")


def test_your_transcoder_folder_is_checked_from_its_cfg_as_loading_checks_it(tmp_path):
    """check_folder_fits reads cfg.json only (no model, no weights loaded) and gives loading's messages."""
    tt.save_transcoder(tt.new_transcoder(32, 64, 32, 4, 1), tmp_path / "tc", {"k": 4})
    tt.check_folder_fits(tmp_path / "tc", 1, 32)
    with pytest.raises(BenchError, match=r"not a transcoder of block 2's MLP \(it reads blocks\.1\.ln2"):
        tt.check_folder_fits(tmp_path / "tc", 2, 32)
    with pytest.raises(BenchError, match="maps 32 -> 32 wide activations, but this model's MLP is 64 -> 64"):
        tt.check_folder_fits(tmp_path / "tc", 1, 64)
    cfg = json.loads((tmp_path / "tc" / "cfg.json").read_text())
    (tmp_path / "tc" / "cfg.json").write_text(json.dumps({**cfg, "d_in": 64}))  # disagrees with its weights
    tt.check_folder_fits(tmp_path / "tc", 1, 32)  # left for loading, which names the folder as damaged
    from sae_lens import TopKSAE, TopKSAEConfig
    from sae_lens.saes.sae import SAEMetadata

    TopKSAE(TopKSAEConfig(d_in=32, d_sae=64, k=4, metadata=SAEMetadata(hook_name=tt.hooks(1)[0]))).save_model(
        str(tmp_path / "sae"))
    an_sae = r"holds a SAELens SAE of blocks\.1\.ln2\.hook_normalized, not a transcoder"
    with pytest.raises(BenchError, match=an_sae):
        tt.check_folder_fits(tmp_path / "sae", 1, 32)
    with pytest.raises(BenchError, match=an_sae):
        tt.load_transcoder(tmp_path / "sae", 1, 32)


def test_dense_transcoder_trains_and_scores_end_to_end_at_tiny():
    def bench(*extra):
        return subprocess.run([sys.executable, "-m", "bench", "bench", "--model", "dense+transcoder", "--task", "chess",
                               "--preset", "tiny", "--threads", "1", "probe_games=20", "legal_move_games=5", *extra],
                              cwd=ROOT, capture_output=True, text=True, timeout=900, env=dict(os.environ))

    out = bench()
    assert out.returncode == 0, out.stderr[-2000:]
    record = load_result(result_path("chess", "dense+transcoder", "tiny", 0))
    assert record["details"]["feature_hook"] == "blocks.1.ln2.hook_normalized -> transcoder encode"
    # loss recovered against zeroing the MLP's output, not its hidden units as for an SAE on hook_post
    assert record["details"]["splice"] == {"reads": "blocks.1.ln2.hook_normalized", "replaces": "blocks.1.hook_mlp_out",
                                           "zero_ablation": "blocks.1.hook_mlp_out"}
    source = record["provenance"]["features_from"]
    assert (source["hook"], source["hook_out"], source["k"]) == ("blocks.1.ln2.hook_normalized",
                                                                   "blocks.1.hook_mlp_out", 32)
    assert record["metrics"]["n_features"] == 4 * 128 and record["metrics"]["l0_fidelity"] <= 32
    refused = bench("site=resid")
    assert refused.returncode == 2 and "its only site is mlp" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1


def test_the_saebench_core_metrics_splice_the_transcoder_in_the_mlps_place():
    from bench.core_metrics import core_metrics

    model, tokens = _relu_model_and_tokens()
    exact = core_metrics(_adapter(model, _mlp_as_transcoder(model, 1, model.cfg.d_mlp), 1), tokens, 1, "mlp")
    m = exact["metrics"]
    assert abs(m["model_behavior_preservation"]["kl_div_with_sae"]) < 1e-6
    assert m["model_behavior_preservation"]["kl_div_with_ablation"] > 1e-4
    assert m["reconstruction_quality"]["mse"] < 1e-8  # of the MLP's output
    assert m["reconstruction_quality"]["explained_variance"] == pytest.approx(1.0, abs=1e-5)
    assert len(exact["feature_density"]) == model.cfg.d_mlp
