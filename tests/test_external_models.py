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

ROOT = Path(__file__).resolve().parents[1]


def _save_gpt2(folder: Path, activation: str = "relu", **overrides) -> "torch.nn.Module":
    """A tiny random GPT2LMHeadModel saved with save_pretrained. Weights wider than the default
    init give logits far from zero; the negative MLP bias makes ReLU neurons fire on a few tokens, as
    a trained model's do (every window would activate a random one, leaving auto-interp nothing)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(**{**dict(vocab_size=50257, n_positions=64, n_embd=32, n_layer=4, n_head=2,
                                  activation_function=activation, initializer_range=0.2), **overrides})
    model = GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        for block in model.transformer.h:
            block.mlp.c_fc.bias.fill_(-2.5)
    model.save_pretrained(folder)
    return model


def _nanogpt_state(n_layer=2, n_head=2, n_embd=32, block_size=256, vocab=32, bias=False, seed=0) -> dict:
    """Random weights in nanoGPT's exact key layout (model.py's GPT), lm_head tied to wte."""
    g = torch.Generator().manual_seed(seed)
    C = n_embd

    def r(*shape, scale=0.2):
        return torch.randn(*shape, generator=g) * scale

    sd = {"transformer.wte.weight": r(vocab, C, scale=0.5), "transformer.wpe.weight": r(block_size, C, scale=0.1),
          "transformer.ln_f.weight": 1 + r(C, scale=0.1)}
    sd["lm_head.weight"] = sd["transformer.wte.weight"]
    for i in range(n_layer):
        p = f"transformer.h.{i}."
        sd.update({p + "ln_1.weight": 1 + r(C, scale=0.1), p + "attn.c_attn.weight": r(3 * C, C),
                   p + "attn.c_proj.weight": r(C, C), p + "ln_2.weight": 1 + r(C, scale=0.1),
                   p + "mlp.c_fc.weight": r(4 * C, C), p + "mlp.c_proj.weight": r(C, 4 * C)})
        if bias:
            sd.update({p + "ln_1.bias": r(C), p + "attn.c_attn.bias": r(3 * C), p + "attn.c_proj.bias": r(C),
                       p + "ln_2.bias": r(C), p + "mlp.c_fc.bias": r(4 * C), p + "mlp.c_proj.bias": r(C)})
    if bias:
        sd["transformer.ln_f.bias"] = r(C)
    args = dict(n_layer=n_layer, n_head=n_head, n_embd=n_embd, block_size=block_size, bias=bias, vocab_size=vocab,
                dropout=0.0)
    return {"model": sd, "model_args": args, "iter_num": 100, "best_val_loss": 1.5, "config": {"dataset": "lichess"}}


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


def _write_meta(folder: Path, vocab: str = VOCAB, protocol: int = 4) -> None:
    meta = {"vocab_size": len(vocab), "itos": dict(enumerate(vocab)), "stoi": {c: i for i, c in enumerate(vocab)}}
    (folder / "meta.pkl").write_bytes(pickle.dumps(meta, protocol=protocol))


def _one(folder: Path, pattern: str) -> Path:
    """The one result file matching `pattern` (names end in 6 hex of the model's path)."""
    found = sorted(folder.glob(pattern))
    assert len(found) == 1, (pattern, sorted(p.name for p in folder.iterdir()))
    return found[0]


def test_two_folders_of_one_name_get_two_result_names(tmp_path):
    from adapters.external import adapter_for

    a, b = adapter_for(f"hf:{tmp_path / 'run-a' / 'checkpoint-1000'}"), adapter_for(f"hf:{tmp_path / 'run-b' / 'checkpoint-1000'}")
    assert a.name.startswith("hf-checkpoint-1000-") and b.name.startswith("hf-checkpoint-1000-") and a.name != b.name
    assert adapter_for(f"hf:{tmp_path / 'run-a' / 'checkpoint-1000'}").name == a.name  # the same path: the same name


def test_the_depth_of_a_model_from_files_is_read_from_its_config(tmp_path):
    from adapters.external import adapter_for
    from bench.run_target import model_depth
    from tasks.chess.task import ChessTask
    from tasks.language.task import LanguageTask

    _save_gpt2(tmp_path / "gpt2")
    torch.save(_nanogpt_state(n_layer=3), tmp_path / "ckpt.pt")
    assert model_depth(adapter_for(f"hf:{tmp_path / 'gpt2'}"), LanguageTask, "tiny-gpt2") == 4
    assert model_depth(adapter_for(f"nanogpt:{tmp_path / 'ckpt.pt'}"), ChessTask, "tiny") == 3


def _bench(*args, tmp: Path):
    env = {**os.environ, "MOEXBENCH_RESULTS": str(tmp / "results"), "MOEXBENCH_CACHE": str(tmp / "cache"),
           "MOEXBENCH_CHECKPOINTS": str(tmp / "checkpoints"), "MOEXBENCH_RUNS": str(tmp / "runs"),
           "MOEXBENCH_THREADS": "1", "CI": "true"}
    return subprocess.run([sys.executable, "-m", "bench", "bench", *args, "--threads", "1"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, env=env)


# --- loading: the same logits as the source format's own forward ---

def test_a_transformers_gpt2_loads_to_the_same_logits(tmp_path):
    from models.hf_gpt2 import load_hf_gpt2

    hf = _save_gpt2(tmp_path / "gpt2", activation="gelu_new")
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

    hf = _save_gpt2(tmp_path / "one", activation="gelu_new")
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

    ckpt = _nanogpt_state(bias=bias)
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

    _write_meta(tmp_path, protocol=protocol)
    assert meta_vocabulary(tmp_path / "meta.pkl") == {c: i for i, c in enumerate(VOCAB)}
    check_meta_vocabulary(tmp_path / "meta.pkl", VOCAB)
    _write_meta(tmp_path, vocab=VOCAB[::-1], protocol=protocol)
    with pytest.raises(BenchError, match="vocabulary differs"):
        check_meta_vocabulary(tmp_path / "meta.pkl", VOCAB)


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

    _save_gpt2(tmp_path / "gpt2")
    out = _bench("--model", f"hf:{tmp_path / 'gpt2'}", "--task", "language", "--preset", "tiny-gpt2", tmp=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(_one(tmp_path / "results/language/tiny-gpt2", "hf-gpt2-??????.json").read_text())
    assert result["provenance"]["feature_kind"].startswith("MLP neurons (hook_post) of hf:")
    assert result["provenance"]["checkpoint"] == str((tmp_path / "gpt2").resolve())  # the whole path, as named
    assert result["metrics"]["loss_recovered"] == pytest.approx(1.0)  # neurons splice in exactly
    assert result["metrics"]["detection_n_features"] > 0
    assert re.search(r"hf-gpt2-[0-9a-f]{6} on language", out.stdout)

    # an SAE on the scored site (layer -3 of 4 = blocks.1, the MLP's 128 neurons), saved by SAELens
    torch.manual_seed(0)
    sae = TopKSAE(TopKSAEConfig(d_in=128, d_sae=256, k=8, metadata=SAEMetadata(hook_name="blocks.1.mlp.hook_post")))
    sae.save_model(str(tmp_path / "sae"))
    out = _bench("--model", f"hf:{tmp_path / 'gpt2'}+sae:{tmp_path / 'sae'}", "--task", "language",
                 "--preset", "tiny-gpt2", tmp=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(_one(tmp_path / "results/language/tiny-gpt2", "hf-gpt2-??????+sae-sae-??????.json").read_text())
    assert "SAELens folder" in result["provenance"]["features_from"]["source"]
    assert result["metrics"]["loss_recovered"] < 1.0  # a random SAE does not rebuild the neurons

    # the same SAE asked to read another site
    out = _bench("--model", f"hf:{tmp_path / 'gpt2'}+sae:{tmp_path / 'sae'}", "--task", "language",
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
    torch.save(_nanogpt_state(n_layer=4), folder / "ckpt.pt")
    _write_meta(folder)
    out = _bench("--model", f"nanogpt:{folder / 'ckpt.pt'}", "--task", "chess", "--preset", "tiny", tmp=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(_one(tmp_path / "results/chess/tiny", "nanogpt-lichess_8layers-ckpt-??????.json").read_text())
    metrics = result["metrics"]
    for name in ("coverage", "reconstruction", "probe_f1", "legal_move_rate"):
        assert 0.0 <= metrics[name] <= 1.0, name
    assert "coverage_random_init" in metrics  # the floor: the same architecture, freshly initialised
    assert "Moving model to device" not in out.stdout  # TransformerLens's own announcement, not ours to print


# --- bad input: one line naming the file and what differs, exit 2, nothing written ---

def _expect_refusal(tmp_path, model: str, task: str, preset: str, words: str):
    out = _bench("--model", model, "--task", task, "--preset", preset, tmp=tmp_path)
    assert out.returncode == 2, out.stderr[-2000:]
    lines = [line for line in out.stderr.strip().splitlines() if line.strip()]
    assert lines[-1].startswith("error:") and words in lines[-1], out.stderr[-2000:]
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").rglob("*.json"))


def test_a_folder_that_is_not_gpt2_is_refused(tmp_path):
    (tmp_path / "llama").mkdir()
    (tmp_path / "llama" / "config.json").write_text(json.dumps({"model_type": "llama"}))
    _expect_refusal(tmp_path, f"hf:{tmp_path / 'llama'}", "language", "tiny-gpt2", "model_type is 'llama'")


def test_a_gpt2_with_another_vocabulary_than_the_preset_is_refused(tmp_path):
    _save_gpt2(tmp_path / "gpt2")
    _expect_refusal(tmp_path, f"hf:{tmp_path / 'gpt2'}", "language", "tiny", "choose a preset with the model's "
                    "tokenizer (paper, tiny-gpt2)")


def test_a_misspelt_sae_part_and_a_missing_sae_folder_are_named(tmp_path):
    from adapters.external import adapter_for

    with pytest.raises(BenchError, match=r"\+sea: is not a part this harness reads; write \+sae:<SAELens folder>"):
        adapter_for(f"hf:{tmp_path / 'gpt2'}+sea:{tmp_path / 'sae'}")
    with pytest.raises(BenchError, match=r"sae: no such folder; give the folder SAELens' save_model wrote"):
        adapter_for(f"hf:{tmp_path / 'gpt2'}+sae:{tmp_path / 'sae'}")
    (tmp_path / "sae").mkdir()
    with pytest.raises(BenchError, match=r"not a SAELens SAE folder \(no cfg.json\)"):
        adapter_for(f"hf:{tmp_path / 'gpt2'}+sae:{tmp_path / 'sae'}")


def test_a_model_for_another_task_is_pointed_to_that_task():
    from bench.external_loading import _check_fits
    from tasks.chess.task import ChessTask
    from tasks.language.task import LanguageTask

    with pytest.raises(BenchError, match=r"none of the chess presets\), or score it on another task: "
                                         r"TASK=language PRESET=paper\|tiny-gpt2$"):
        _check_fits("hf:gpt2", 50257, 1024, ChessTask, "tiny")
    with pytest.raises(BenchError, match=r"TASK=language PRESET=tiny-gpt2$"):  # paper feeds 1,024 tokens
        _check_fits("hf:gpt2", 50257, 64, ChessTask, "tiny")
    with pytest.raises(BenchError, match=r"or score it on another task: TASK=chess PRESET=[a-z0-9|-]*tiny"):
        _check_fits("nanogpt:ckpt.pt", len(VOCAB), 1023, LanguageTask, "tiny-gpt2")


def test_a_gpt2_with_a_shorter_context_than_the_preset_is_pointed_to_one_that_fits_or_told_none_does(tmp_path):
    _save_gpt2(tmp_path / "gpt2")  # 64 positions: tiny-gpt2 feeds 64, paper 1,024
    _expect_refusal(tmp_path, f"hf:{tmp_path / 'gpt2'}", "language", "paper",
                    "feeds 1024; choose a preset with a shorter context (tiny-gpt2)")
    _save_gpt2(tmp_path / "short", n_positions=32)
    _expect_refusal(tmp_path, f"hf:{tmp_path / 'short'}", "language", "tiny-gpt2",
                    "no language preset with its tokenizer feeds 32 tokens or fewer")


def test_a_ckpt_whose_keys_are_not_nanogpts_is_refused(tmp_path):
    ckpt = _nanogpt_state()
    del ckpt["model"]["transformer.h.1.mlp.c_fc.weight"]
    torch.save(ckpt, tmp_path / "ckpt.pt")
    _expect_refusal(tmp_path, f"nanogpt:{tmp_path / 'ckpt.pt'}", "chess", "tiny", "'transformer.h.1.mlp.c_fc.weight'")
    torch.save({"state_dict": {}}, tmp_path / "ckpt.pt")
    _expect_refusal(tmp_path, f"nanogpt:{tmp_path / 'ckpt.pt'}", "chess", "tiny", "'model' and 'model_args'")


def test_a_chess_model_with_another_vocabulary_is_refused(tmp_path):
    torch.save(_nanogpt_state(vocab=40), tmp_path / "ckpt.pt")
    _expect_refusal(tmp_path, f"nanogpt:{tmp_path / 'ckpt.pt'}", "chess", "tiny", "40-token vocabulary")
    torch.save(_nanogpt_state(), tmp_path / "ckpt.pt")
    _write_meta(tmp_path, vocab=VOCAB[1:] + VOCAB[0])
    _expect_refusal(tmp_path, f"nanogpt:{tmp_path / 'ckpt.pt'}", "chess", "tiny", "vocabulary differs")
    _expect_refusal(tmp_path, f"nanogpt:{tmp_path / 'ckpt.pt'}", "chess", "tiny",
                    "give one trained on the chess characters")
    (tmp_path / "meta.pkl").write_bytes(b"not a pickle")
    _expect_refusal(tmp_path, f"nanogpt:{tmp_path / 'ckpt.pt'}", "chess", "tiny", "or move it out of the folder")


def test_an_sae_of_another_site_is_pointed_to_the_setting_that_reads_it(tmp_path):
    from sae_lens import TopKSAE, TopKSAEConfig
    from sae_lens.saes.sae import SAEMetadata

    _save_gpt2(tmp_path / "gpt2")
    sae = TopKSAE(TopKSAEConfig(d_in=32, d_sae=64, k=4, metadata=SAEMetadata(hook_name="blocks.1.hook_resid_post")))
    sae.save_model(str(tmp_path / "sae"))
    # its width differs from the scored MLP's too: the hook comes first, for it names the fix
    _expect_refusal(tmp_path, f"hf:{tmp_path / 'gpt2'}+sae:{tmp_path / 'sae'}", "language", "tiny-gpt2",
                    "was trained on blocks.1.hook_resid_post, but the task reads blocks.1.mlp.hook_post; "
                    "score that site with ARGS='layer=1 site=resid'")


@pytest.mark.parametrize("d_in, hook, words", [
    (32, "blocks.1.mlp.hook_post", "reads 32-wide activations but site blocks.1.mlp.hook_post is 128 wide"),
    (128, "blocks.2.mlp.hook_post", "trained on blocks.2.mlp.hook_post, but the task reads blocks.1.mlp.hook_post"),
], ids=["width", "hook"])
def test_an_sae_that_cannot_read_the_scored_site_is_refused_before_any_label(tmp_path, d_in, hook, words):
    from sae_lens import TopKSAE, TopKSAEConfig
    from sae_lens.saes.sae import SAEMetadata

    folder = tmp_path / "model"
    folder.mkdir()
    torch.save(_nanogpt_state(n_layer=4), folder / "ckpt.pt")  # 32 wide, MLP 128: the scored block is 1
    sae = TopKSAE(TopKSAEConfig(d_in=d_in, d_sae=64, k=4, metadata=SAEMetadata(hook_name=hook)))
    sae.save_model(str(tmp_path / "sae"))
    _expect_refusal(tmp_path, f"nanogpt:{folder / 'ckpt.pt'}+sae:{tmp_path / 'sae'}", "chess", "tiny", words)
    assert not (tmp_path / "cache").exists() and not (tmp_path / "runs").exists()  # no label, no floor SAE


@pytest.mark.parametrize("content", [b"", b"not a checkpoint\n", b"\x00\x01garbage", None, "mixed keys", "not a tensor",
                                     "plain pickle"])
def test_a_file_that_is_no_nanogpt_checkpoint_is_one_line_naming_it(tmp_path, content):
    import warnings

    from models.nanogpt_checkpoint import read_checkpoint

    path = tmp_path / "ckpt.pt"
    if content == "plain pickle":
        path.write_bytes(pickle.dumps({"model": {}}, protocol=4))  # torch warns about its protocol: not said
    elif content is None:
        path.mkdir()                                   # a folder where the file should be
    elif content == "mixed keys":
        torch.save({1: 2, "a": 3}, path)
    elif content == "not a tensor":
        ckpt = _nanogpt_state()
        ckpt["model"]["lm_head.weight"] = 0.5
        torch.save(ckpt, path)
    else:
        path.write_bytes(content)
    with (warnings.catch_warnings(record=True) as warned,
          pytest.raises(BenchError, match=f"^nanogpt:{re.escape(str(path))}: ") as caught):
        warnings.simplefilter("always")
        read_checkpoint(path)
    assert "\n" not in str(caught.value) and "weights_only" not in str(caught.value).replace("weights_only=True", "")
    assert not warned, [str(w.message) for w in warned]  # a line on stderr before the refusal's own


@pytest.mark.parametrize("damage, needle", [
    ("an extra block", "holds block(s) 2 beyond model_args n_layer=2"),
    ("a wrong shape", "transformer.h.1.attn.c_proj.weight is (32, 16), while model_args"),
    ("a wrong bias", "transformer.h.0.mlp.c_fc.bias is (3,), while model_args"),
])
def test_weights_that_disagree_with_their_model_args_are_refused_naming_the_tensor(tmp_path, damage, needle):
    from models.nanogpt_checkpoint import read_checkpoint

    ckpt = _nanogpt_state(n_layer=3 if damage == "an extra block" else 2, bias=damage == "a wrong bias")
    model = ckpt["model"]
    if damage == "an extra block":
        ckpt["model_args"]["n_layer"] = 2   # a third block saved, two declared: nanoGPT's strict load refuses it
    elif damage == "a wrong shape":
        model["transformer.h.1.attn.c_proj.weight"] = model["transformer.h.1.attn.c_proj.weight"][:, :16]
    else:
        model["transformer.h.0.mlp.c_fc.bias"] = torch.zeros(3)
    torch.save(ckpt, tmp_path / "ckpt.pt")
    with pytest.raises(BenchError, match=re.escape(needle)) as caught:
        read_checkpoint(tmp_path / "ckpt.pt")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("damage", ["truncated", "not safetensors", "a wider config", "fewer blocks", "more blocks"])
def test_a_damaged_gpt2_folder_is_one_line_naming_it(tmp_path, damage):
    from models.hf_gpt2 import load_hf_gpt2

    folder = tmp_path / "gpt2"
    _save_gpt2(folder)
    weights = folder / "model.safetensors"
    if damage == "truncated":
        weights.write_bytes(weights.read_bytes()[:100])
    elif damage == "not safetensors":
        weights.write_bytes(bytes(range(256)) * 8)
    else:  # the weights of 4 blocks of 32 under a config that says otherwise
        config = json.loads((folder / "config.json").read_text())
        changed = {"a wider config": {"n_embd": 64}, "fewer blocks": {"n_layer": 3}, "more blocks": {"n_layer": 5}}
        (folder / "config.json").write_text(json.dumps({**config, **changed[damage]}))
    unreadable = r"model\.safetensors is not readable"
    needle = {"truncated": unreadable, "not safetensors": unreadable,
              "a wider config": r"transformer\.\S+ is \([\d, ]+\) in model\.safetensors, while config\.json "
                                r"\(n_embd 64, n_inner 256",  # the first tensor that differs, named
              "fewer blocks": r"model\.safetensors holds blocks beyond n_layer=3 \(3\)",
              "more blocks": r"model\.safetensors lacks 12 tensor\(s\) config\.json asks for, first h\.4\."}[damage]
    with pytest.raises(BenchError, match=f"^hf:{re.escape(str(folder))}: {needle}") as caught:
        load_hf_gpt2(folder)
    assert "\n" not in str(caught.value)


def test_a_model_from_your_files_is_refused_by_the_toy_task_and_nothing_is_written(tmp_path):
    _save_gpt2(tmp_path / "gpt2")
    _expect_refusal(tmp_path, f"hf:{tmp_path / 'gpt2'}", "superposition", "tiny",
                    "trains its own toy models from an architecture this harness defines")
    assert not (tmp_path / "results").exists()


def test_a_relative_path_is_recorded_resolved(tmp_path, monkeypatch):
    from adapters.external import adapter_for

    (tmp_path / "models" / "sae").mkdir(parents=True)
    (tmp_path / "models" / "sae" / "cfg.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    cls = adapter_for("hf:models/gpt2+sae:models/sae")
    assert cls.spec == f"hf:{tmp_path / 'models' / 'gpt2'}+sae:{tmp_path / 'models' / 'sae'}"
    assert cls.base_model == f"hf:{tmp_path / 'models' / 'gpt2'}"
