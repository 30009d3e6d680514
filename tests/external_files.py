"""Files a user would bring, made at tiny size for the tests of models from your files: a GPT-2
saved by transformers, a nanoGPT ckpt.pt in Karvonen's chess layout and its meta.pkl; and the bench
command line run on them in a scratch folder."""

import os
import pickle
import subprocess
import sys
from pathlib import Path

import torch

from tasks.chess.tokenizer import VOCAB

ROOT = Path(__file__).resolve().parents[1]


def save_gpt2(folder: Path, activation: str = "relu", **overrides) -> "torch.nn.Module":
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


def nanogpt_state(n_layer=2, n_head=2, n_embd=32, block_size=256, vocab=32, bias=False, seed=0) -> dict:
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


def write_meta(folder: Path, vocab: str = VOCAB, protocol: int = 4) -> None:
    meta = {"vocab_size": len(vocab), "itos": dict(enumerate(vocab)), "stoi": {c: i for i, c in enumerate(vocab)}}
    (folder / "meta.pkl").write_bytes(pickle.dumps(meta, protocol=protocol))


def one_result(folder: Path, pattern: str) -> Path:
    """The one result file matching `pattern` (names end in 6 hex of the model's path)."""
    found = sorted(folder.glob(pattern))
    assert len(found) == 1, (pattern, sorted(p.name for p in folder.iterdir()))
    return found[0]


def bench_cli(*args, tmp: Path):
    env = {**os.environ, "MOEXBENCH_RESULTS": str(tmp / "results"), "MOEXBENCH_CACHE": str(tmp / "cache"),
           "MOEXBENCH_CHECKPOINTS": str(tmp / "checkpoints"), "MOEXBENCH_RUNS": str(tmp / "runs"),
           "MOEXBENCH_THREADS": "1", "CI": "true"}
    return subprocess.run([sys.executable, "-m", "bench", "bench", *args, "--threads", "1"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, env=env)


def expect_refusal(tmp_path, model: str, task: str, preset: str, words: str):
    out = bench_cli("--model", model, "--task", task, "--preset", preset, tmp=tmp_path)
    assert out.returncode == 2, out.stderr[-2000:]
    lines = [line for line in out.stderr.strip().splitlines() if line.strip()]
    assert lines[-1].startswith("error:") and words in lines[-1], out.stderr[-2000:]
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").rglob("*.json"))
