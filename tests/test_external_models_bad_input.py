"""Bad input from the user's files: a folder or checkpoint that is not what it claims, another
vocabulary or context, an SAE of another site or width, a damaged file. Each is one line naming the
file and what differs, exit 2, nothing written."""

import json
import pickle
import re

import pytest
import torch

from core.errors import BenchError
from tasks.chess.tokenizer import VOCAB
from tests.external_files import expect_refusal, nanogpt_state, save_gpt2, write_meta


def test_a_path_that_is_not_there_is_refused_before_any_model_library_is_imported(tmp_path):
    # the command line checks the name first: a typo costs no import of TransformerLens
    import subprocess
    import sys

    check = ("import sys\nfrom bench import registry\nfrom core.errors import BenchError\n"
             "for name in sys.argv[1:]:\n"
             "    try:\n        registry.check_model_name(name)\n    except BenchError as e:\n        print(e)\n"
             "print(sorted(m for m in ('torch', 'transformer_lens', 'sae_lens') if m in sys.modules))\n")
    (tmp_path / "ckpt.pt").mkdir()
    names = [f"nanogpt:{tmp_path / 'nope.pt'}", f"nanogpt:{tmp_path / 'ckpt.pt'}", f"hf:{tmp_path / 'nope'}",
             f"hf:{tmp_path}+sae:{tmp_path / 'nope'}"]
    out = subprocess.run([sys.executable, "-c", check, *names], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == [
        f"nanogpt:{tmp_path / 'nope.pt'}: no such file; give the ckpt.pt that nanoGPT's train.py saved",
        f"nanogpt:{tmp_path / 'ckpt.pt'}: a folder, not a file; give the ckpt.pt that nanoGPT's train.py saved",
        f"hf:{tmp_path / 'nope'}: no such folder; give the folder saved by transformers' save_pretrained",
        f"+sae:{tmp_path / 'nope'}: no such folder; give the folder SAELens' save_model wrote (cfg.json and "
        f"sae_weights.safetensors)",
        "[]"]


def test_heads_that_cannot_split_the_width_are_refused_naming_the_fix(tmp_path):
    from models.hf_gpt2 import read_gpt2_config
    from models.nanogpt_checkpoint import read_checkpoint

    save_gpt2(tmp_path / "gpt2")
    config = json.loads((tmp_path / "gpt2" / "config.json").read_text())
    (tmp_path / "gpt2" / "config.json").write_text(json.dumps({**config, "n_head": 3}))
    with pytest.raises(BenchError, match="n_embd 32 is not a multiple of n_head 3, so the heads cannot split it; "
                                         "give the config.json the weights were saved with"):
        read_gpt2_config(tmp_path / "gpt2")
    torch.save(nanogpt_state(n_head=3), tmp_path / "ckpt.pt")
    with pytest.raises(BenchError, match="n_embd 32 is not a multiple of n_head 3, so the heads cannot split it; "
                                         "give the model_args the weights were trained with"):
        read_checkpoint(tmp_path / "ckpt.pt")


def test_a_folder_that_is_not_gpt2_is_refused(tmp_path):
    (tmp_path / "llama").mkdir()
    (tmp_path / "llama" / "config.json").write_text(json.dumps({"model_type": "llama"}))
    expect_refusal(tmp_path, f"hf:{tmp_path / 'llama'}", "language", "tiny-gpt2", "model_type is 'llama'")


def test_a_gpt2_with_another_vocabulary_than_the_preset_is_refused(tmp_path):
    save_gpt2(tmp_path / "gpt2")
    expect_refusal(tmp_path, f"hf:{tmp_path / 'gpt2'}", "language", "tiny", "choose a preset with the model's "
                    "tokenizer (paper, tiny-gpt2)")


def test_a_misspelt_sae_part_and_a_missing_sae_folder_are_named(tmp_path):
    from adapters.external import adapter_for

    with pytest.raises(BenchError, match=r"\+sea: is not a part this harness reads; write \+sae:<SAELens folder>"):
        adapter_for(f"hf:{tmp_path / 'gpt2'}+sea:{tmp_path / 'sae'}")
    with pytest.raises(BenchError, match=r"gpt2: no such folder; give the folder saved by transformers' "
                                         r"save_pretrained"):
        adapter_for(f"hf:{tmp_path / 'gpt2'}+sae:{tmp_path / 'sae'}")
    (tmp_path / "gpt2").mkdir()  # the model's folder is checked first; what it holds, when it is loaded
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
    save_gpt2(tmp_path / "gpt2")  # 64 positions: tiny-gpt2 feeds 64, paper 1,024
    expect_refusal(tmp_path, f"hf:{tmp_path / 'gpt2'}", "language", "paper",
                    "feeds 1024; choose a preset with a shorter context (tiny-gpt2)")
    save_gpt2(tmp_path / "short", n_positions=32)
    expect_refusal(tmp_path, f"hf:{tmp_path / 'short'}", "language", "tiny-gpt2",
                    "no language preset with its tokenizer feeds 32 tokens or fewer")


def test_a_ckpt_whose_keys_are_not_nanogpts_is_refused(tmp_path):
    ckpt = nanogpt_state()
    del ckpt["model"]["transformer.h.1.mlp.c_fc.weight"]
    torch.save(ckpt, tmp_path / "ckpt.pt")
    expect_refusal(tmp_path, f"nanogpt:{tmp_path / 'ckpt.pt'}", "chess", "tiny", "'transformer.h.1.mlp.c_fc.weight'")
    torch.save({"state_dict": {}}, tmp_path / "ckpt.pt")
    expect_refusal(tmp_path, f"nanogpt:{tmp_path / 'ckpt.pt'}", "chess", "tiny", "'model' and 'model_args'")


def test_a_chess_model_with_another_vocabulary_is_refused(tmp_path):
    torch.save(nanogpt_state(vocab=40), tmp_path / "ckpt.pt")
    expect_refusal(tmp_path, f"nanogpt:{tmp_path / 'ckpt.pt'}", "chess", "tiny", "40-token vocabulary")
    torch.save(nanogpt_state(), tmp_path / "ckpt.pt")
    write_meta(tmp_path, vocab=VOCAB[1:] + VOCAB[0])
    expect_refusal(tmp_path, f"nanogpt:{tmp_path / 'ckpt.pt'}", "chess", "tiny", "vocabulary differs")
    expect_refusal(tmp_path, f"nanogpt:{tmp_path / 'ckpt.pt'}", "chess", "tiny",
                    "give one trained on the chess characters")
    (tmp_path / "meta.pkl").write_bytes(b"not a pickle")
    expect_refusal(tmp_path, f"nanogpt:{tmp_path / 'ckpt.pt'}", "chess", "tiny", "or move it out of the folder")


def test_an_sae_of_another_site_is_pointed_to_the_setting_that_reads_it(tmp_path):
    from sae_lens import TopKSAE, TopKSAEConfig
    from sae_lens.saes.sae import SAEMetadata

    save_gpt2(tmp_path / "gpt2")
    sae = TopKSAE(TopKSAEConfig(d_in=32, d_sae=64, k=4, metadata=SAEMetadata(hook_name="blocks.1.hook_resid_post")))
    sae.save_model(str(tmp_path / "sae"))
    # its width differs from the scored MLP's too: the hook comes first, for it names the fix
    expect_refusal(tmp_path, f"hf:{tmp_path / 'gpt2'}+sae:{tmp_path / 'sae'}", "language", "tiny-gpt2",
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
    torch.save(nanogpt_state(n_layer=4), folder / "ckpt.pt")  # 32 wide, MLP 128: the scored block is 1
    sae = TopKSAE(TopKSAEConfig(d_in=d_in, d_sae=64, k=4, metadata=SAEMetadata(hook_name=hook)))
    sae.save_model(str(tmp_path / "sae"))
    expect_refusal(tmp_path, f"nanogpt:{folder / 'ckpt.pt'}+sae:{tmp_path / 'sae'}", "chess", "tiny", words)
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
        ckpt = nanogpt_state()
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

    ckpt = nanogpt_state(n_layer=3 if damage == "an extra block" else 2, bias=damage == "a wrong bias")
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
    save_gpt2(folder)
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
    save_gpt2(tmp_path / "gpt2")
    expect_refusal(tmp_path, f"hf:{tmp_path / 'gpt2'}", "superposition", "tiny",
                    "trains its own toy models from an architecture this harness defines")
    assert not (tmp_path / "results").exists()


def test_a_relative_path_is_recorded_resolved(tmp_path, monkeypatch):
    from adapters.external import adapter_for

    (tmp_path / "models" / "sae").mkdir(parents=True)
    (tmp_path / "models" / "gpt2").mkdir()
    (tmp_path / "models" / "sae" / "cfg.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    cls = adapter_for("hf:models/gpt2+sae:models/sae")
    assert cls.spec == f"hf:{tmp_path / 'models' / 'gpt2'}+sae:{tmp_path / 'models' / 'sae'}"
    assert cls.base_model == f"hf:{tmp_path / 'models' / 'gpt2'}"
