"""Models and SAEs from the user's files: a GPT-2 saved by transformers, a nanoGPT ckpt.pt in
Karvonen's chess format, a SAELens SAE folder. Each loads to the same logits as its own format's
forward, and runs end to end through the bench command line."""

import json
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from core.errors import BenchError
from tasks.chess.tokenizer import VOCAB
from tests.external_files import ROOT, bench_cli, nanogpt_state, one_result, save_gpt2, write_meta


def _nanogpt_forward(sd: dict, args: dict, idx: torch.Tensor) -> torch.Tensor:
    """nanoGPT's forward written out directly from its weights (the reference for the conversion)."""
    C, nh = args["n_embd"], args["n_head"]
    B, T = idx.shape

    def ln(x, name):
        return F.layer_norm(x, (C,), sd[name + ".weight"], sd.get(name + ".bias"), 1e-5)

    def lin(x, name):
        return F.linear(x, sd[name + ".weight"], sd.get(name + ".bias"))

    x = sd["transformer.wte.weight"][idx] + sd["transformer.wpe.weight"][:T]
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for i in range(args["n_layer"]):
        p = f"transformer.h.{i}."
        q, k, v = lin(ln(x, p + "ln_1"), p + "attn.c_attn").split(C, dim=2)
        q, k, v = (t.view(B, T, nh, C // nh).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / (C // nh) ** 0.5
        y = att.masked_fill(~mask, float("-inf")).softmax(-1) @ v
        x = x + lin(y.transpose(1, 2).reshape(B, T, C), p + "attn.c_proj")
        x = x + lin(F.gelu(lin(ln(x, p + "ln_2"), p + "mlp.c_fc")), p + "mlp.c_proj")
    return F.linear(ln(x, "transformer.ln_f"), sd["lm_head.weight"])


def test_two_folders_of_one_name_get_two_result_names(tmp_path):
    from adapters.external import adapter_for

    for run in ("run-a", "run-b"):
        (tmp_path / run / "checkpoint-1000").mkdir(parents=True)
    a, b = adapter_for(f"hf:{tmp_path / 'run-a' / 'checkpoint-1000'}"), adapter_for(f"hf:{tmp_path / 'run-b' / 'checkpoint-1000'}")
    assert a.name.startswith("hf-checkpoint-1000-") and b.name.startswith("hf-checkpoint-1000-") and a.name != b.name
    assert adapter_for(f"hf:{tmp_path / 'run-a' / 'checkpoint-1000'}").name == a.name  # the same path: the same name


def test_the_depth_of_a_model_from_files_is_read_from_its_config(tmp_path):
    from adapters.external import adapter_for
    from bench.run_target import model_depth
    from tasks.chess.task import ChessTask
    from tasks.language.task import LanguageTask

    save_gpt2(tmp_path / "gpt2")
    torch.save(nanogpt_state(n_layer=3), tmp_path / "ckpt.pt")
    assert model_depth(adapter_for(f"hf:{tmp_path / 'gpt2'}"), LanguageTask, "tiny-gpt2") == 4
    assert model_depth(adapter_for(f"nanogpt:{tmp_path / 'ckpt.pt'}"), ChessTask, "tiny") == 3


# --- loading: the same logits as the source format's own forward ---

def test_a_transformers_gpt2_loads_to_the_same_logits(tmp_path):
    from models.hf_gpt2 import load_hf_gpt2

    hf = save_gpt2(tmp_path / "gpt2", activation="gelu_new")
    ours = load_hf_gpt2(tmp_path / "gpt2")
    tokens = torch.randint(0, 50257, (3, 40), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want, got = hf(tokens).logits, ours(tokens)
    assert want.abs().max() > 1.0  # logits far from zero, so agreement means something
    torch.testing.assert_close(got, want, atol=1e-4, rtol=0)
    # the neurons the harness scores are the checkpoint's own (nothing folded into them)
    _, cache = ours.run_with_cache(tokens, names_filter=["blocks.1.mlp.hook_post"])
    seen = []
    handle = hf.transformer.h[1].mlp.act.register_forward_hook(lambda module, args, out: seen.append(out))
    with torch.no_grad():
        hf(tokens)
    handle.remove()
    torch.testing.assert_close(cache["blocks.1.mlp.hook_post"], seen[0], atol=1e-4, rtol=0)


def test_a_sharded_save_loads_its_shards_and_names_one_that_is_missing(tmp_path):
    from bench.external_loading import _weights_sha256
    from models.checkpoint import file_sha256
    from models.hf_gpt2 import load_hf_gpt2, weight_files

    hf = save_gpt2(tmp_path / "one", activation="gelu_new")
    hf.save_pretrained(tmp_path / "sharded", max_shard_size="100KB")  # a 4-block 32-wide model: several shards
    shards = weight_files(tmp_path / "sharded")
    assert len(shards) > 1 and not (tmp_path / "sharded" / "model.safetensors").exists()
    tokens = torch.randint(0, 50257, (2, 20), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(load_hf_gpt2(tmp_path / "sharded")(tokens), hf(tokens).logits, atol=1e-4, rtol=0)
    assert _weights_sha256(tmp_path / "one") == file_sha256(tmp_path / "one" / "model.safetensors")
    assert _weights_sha256(tmp_path / "sharded") != _weights_sha256(tmp_path / "one")
    # a pytorch_model.bin beside the safetensors shards: transformers loads the shards, and so do we
    torch.save(hf.state_dict(), tmp_path / "sharded" / "pytorch_model.bin")
    assert weight_files(tmp_path / "sharded") == shards
    shards[-1].unlink()
    with pytest.raises(BenchError, match=rf"lists {len(shards)} shard\(s\) and 1 are not in the folder "
                                         rf"\({shards[-1].name}\); copy every shard beside it"):
        load_hf_gpt2(tmp_path / "sharded")


@pytest.mark.parametrize("bias", [False, True])
def test_a_nanogpt_checkpoint_loads_to_the_same_logits(tmp_path, bias):
    from models.nanogpt_checkpoint import load_nanogpt

    ckpt = nanogpt_state(bias=bias)
    # torch.compile'd runs save their keys under _orig_mod.: the loader strips it
    ckpt["model"] = {f"_orig_mod.{k}": v for k, v in ckpt["model"].items()}
    torch.save(ckpt, tmp_path / "ckpt.pt")
    model = load_nanogpt(tmp_path / "ckpt.pt")
    tokens = torch.randint(0, 32, (2, 50), generator=torch.Generator().manual_seed(2))
    state = {k.removeprefix("_orig_mod."): v for k, v in ckpt["model"].items()}
    with torch.no_grad():
        want, got = _nanogpt_forward(state, ckpt["model_args"], tokens), model(tokens)
    assert want.abs().max() > 1.0
    torch.testing.assert_close(got, want, atol=1e-4, rtol=0)


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_meta_pkl_is_checked_without_unpickling(tmp_path, protocol):
    from models.nanogpt_checkpoint import check_meta_vocabulary, meta_vocabulary

    write_meta(tmp_path, protocol=protocol)
    assert meta_vocabulary(tmp_path / "meta.pkl") == {c: i for i, c in enumerate(VOCAB)}
    check_meta_vocabulary(tmp_path / "meta.pkl", VOCAB)
    write_meta(tmp_path, vocab=VOCAB[::-1], protocol=protocol)
    with pytest.raises(BenchError, match="vocabulary differs"):
        check_meta_vocabulary(tmp_path / "meta.pkl", VOCAB)


def test_a_meta_pkl_of_other_ids_is_told_id_by_id(tmp_path):
    from models.nanogpt_checkpoint import check_meta_vocabulary

    swapped = VOCAB[1] + VOCAB[0] + VOCAB[2:] + "z"  # '#' and ' ' trade ids; a 33rd character
    write_meta(tmp_path, vocab=swapped)
    with pytest.raises(BenchError) as refused:
        check_meta_vocabulary(tmp_path / "meta.pkl", VOCAB)
    assert str(refused.value).endswith(
        "differs from the chess one (' #+-.0123456789;=BKNOQRabcdefghx') at 3 of 33 ids (id 0 is '#' there, ' ' in "
        "chess; id 1 is ' ' there, '#' in chess; id 32 is 'z' there, no character in chess); the model reads other "
        "token ids")


class _Payload:
    def __reduce__(self):
        return (Path.touch, (Path(os.environ["MOEXBENCH_TEST_CANARY"]),))


def test_a_meta_pkl_that_would_run_code_is_refused_and_never_run(tmp_path, monkeypatch):
    from models.nanogpt_checkpoint import meta_vocabulary

    canary = tmp_path / "ran"
    monkeypatch.setenv("MOEXBENCH_TEST_CANARY", str(canary))
    (tmp_path / "meta.pkl").write_bytes(pickle.dumps({"stoi": _Payload()}))
    with pytest.raises(BenchError, match="builds objects"):
        meta_vocabulary(tmp_path / "meta.pkl")
    assert not canary.exists()


# --- end to end through the bench command line ---

def test_hf_gpt2_and_an_sae_on_it_score_on_the_language_task(tmp_path):
    from sae_lens import TopKSAE, TopKSAEConfig
    from sae_lens.saes.sae import SAEMetadata

    save_gpt2(tmp_path / "gpt2")
    out = bench_cli("--model", f"hf:{tmp_path / 'gpt2'}", "--task", "language", "--preset", "tiny-gpt2", tmp=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(one_result(tmp_path / "results/language/tiny-gpt2", "hf-gpt2-??????.json").read_text())
    assert result["provenance"]["feature_kind"].startswith("MLP neurons (hook_post) of hf:")
    assert result["provenance"]["checkpoint"] == str((tmp_path / "gpt2").resolve())  # the whole path, as named
    assert result["metrics"]["loss_recovered"] == pytest.approx(1.0)  # neurons splice in exactly
    assert result["metrics"]["detection_n_features"] > 0
    assert re.search(r"hf-gpt2-[0-9a-f]{6} on language", out.stdout)

    # an SAE on the scored site (layer -3 of 4 = blocks.1, the MLP's 128 neurons), saved by SAELens
    torch.manual_seed(0)
    sae = TopKSAE(TopKSAEConfig(d_in=128, d_sae=256, k=8, metadata=SAEMetadata(hook_name="blocks.1.mlp.hook_post")))
    sae.save_model(str(tmp_path / "sae"))
    out = bench_cli("--model", f"hf:{tmp_path / 'gpt2'}+sae:{tmp_path / 'sae'}", "--task", "language",
                 "--preset", "tiny-gpt2", tmp=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(one_result(tmp_path / "results/language/tiny-gpt2", "hf-gpt2-??????+sae-sae-??????.json").read_text())
    assert "SAELens folder" in result["provenance"]["features_from"]["source"]
    assert result["metrics"]["loss_recovered"] < 1.0  # a random SAE does not rebuild the neurons

    # the same SAE asked to read another site
    out = bench_cli("--model", f"hf:{tmp_path / 'gpt2'}+sae:{tmp_path / 'sae'}", "--task", "language",
                 "--preset", "tiny-gpt2", "layer=2", tmp=tmp_path)
    assert out.returncode == 2 and "trained on blocks.1.mlp.hook_post" in out.stderr, out.stderr[-2000:]

    # both results export to SAEBench's format: the export finds the models again by their spec
    env = {**os.environ, "MOEXBENCH_RESULTS": str(tmp_path / "results"), "MOEXBENCH_CACHE": str(tmp_path / "cache"),
           "MOEXBENCH_CHECKPOINTS": str(tmp_path / "checkpoints"), "CI": "true"}
    out = subprocess.run([sys.executable, "-m", "bench", "export", "--format", "saebench", "--task", "language",
                          "--preset", "tiny-gpt2", "--threads", "1", "--out", str(tmp_path / "export")], cwd=ROOT,
                         capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    core = sorted(p.name for p in (tmp_path / "export" / "core").glob("*.json"))
    assert [re.sub("-[0-9a-f]{6}", "-<hex>", name) for name in core] == [
        "moexbench_language_tiny-gpt2_hf-gpt2-<hex>+sae-sae-<hex>_eval_results.json",
        "moexbench_language_tiny-gpt2_hf-gpt2-<hex>_eval_results.json"]


def test_a_nanogpt_chess_checkpoint_scores_on_the_chess_task(tmp_path):
    folder = tmp_path / "lichess_8layers"
    folder.mkdir()
    torch.save(nanogpt_state(n_layer=4), folder / "ckpt.pt")
    write_meta(folder)
    out = bench_cli("--model", f"nanogpt:{folder / 'ckpt.pt'}", "--task", "chess", "--preset", "tiny", tmp=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(one_result(tmp_path / "results/chess/tiny", "nanogpt-lichess_8layers-ckpt-??????.json").read_text())
    metrics = result["metrics"]
    for name in ("coverage", "reconstruction", "probe_f1", "legal_move_rate"):
        assert 0.0 <= metrics[name] <= 1.0, name
    assert "coverage_random_init" in metrics  # the floor: the same architecture, freshly initialised
    assert "Moving model to device" not in out.stdout  # TransformerLens's own announcement, not ours to print
