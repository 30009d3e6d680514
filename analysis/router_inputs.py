"""What a MoE router's choices are made of, block by block: why experts go unused.

MoE-X's router has no matrix of its own: its score for expert j is -erf of the expected
pre-activation of j's units over their spread (docs/moex.md section 3.3), a function of the layer's
input x alone. When x carries a large component shared by every token (a LayerNorm bias, a constant
direction of the residual stream), that component moves every token's scores the same way, and the
experts whose encoders point away from it win everywhere. This measures, per block, on the
validation rows:

- `unused`: experts taking under a quarter of their even share of the (token, slot) assignments, and
  `top_k_load`, the k busiest experts' share (as the results' `experts_unused` and `router_collapsed`);
- `shared_mean_share`: |mean over tokens of x| / mean over tokens of |x|, the part of the input every
  token has in common (0: none; 1: every token the same vector);
- `score_between` and `score_within`: the spread of the scores across experts (std over experts of each
  expert's mean score) and across tokens (mean over experts of the std over tokens). Between >> within:
  the expert, not the token, decides;
- `top1_gate`: the mean routing weight of each token's first choice (for a softmax over the top k,
  1/k means an even mix; Switch's weight is the softmax over all experts, so it can fall below 1/k);
- `unused_if_centred`: the experts left unused if the router saw x minus its mean over these tokens,
  the weights unchanged. A reading of what the shared component does to routing, not a model: the
  experts were trained on the routing they had.

    python -m analysis.router_inputs --task chess --preset cpu --models moex,moe,switch --seeds 0,1,2

prints one row per model, seed and block, and writes `results/<task>/routers/inputs.json`. A run reads
the checkpoints on this machine: a seed whose checkpoint is not here is named and not read, and its
earlier reading in that file, if any, is kept as it was (a fresh clone holds seed 0's checkpoints
only, so running this there must not drop the readings of seeds trained elsewhere). Each reading
carries its own provenance: the sha, date and command it was read with.
"""

from __future__ import annotations

import datetime
import json
import sys

import torch

from adapters.moe import UNUSED_SHARE
from bench.own_data import refuse_own_data
from core.arguments import OneLineParser
from core.errors import FILES_WHOLE, BenchError, run_command
from core.results import atomic_write_text, git_sha, task_dir

ROWS = 64  # packed validation windows read per model: the expert analysis's sample


def shared_mean_share(x: torch.Tensor) -> float:
    """(n, d) -> |mean_n x| / mean_n |x|."""
    return (x.mean(0).norm() / x.norm(dim=-1).mean()).item()


def loads(chosen: torch.Tensor, n_experts: int) -> torch.Tensor:
    """Each expert's share of the (token, slot) assignments in `chosen` (any shape of expert ids)."""
    return torch.bincount(chosen.reshape(-1), minlength=n_experts).float() / chosen.numel()


def unused(load: torch.Tensor) -> int:
    return int((load < UNUSED_SHARE / len(load)).sum())


def score_spread(scores: torch.Tensor) -> tuple[float, float]:
    """(n, M) scores -> (std over experts of the per-expert mean, mean over experts of the std over tokens)."""
    return scores.mean(0).std(unbiased=False).item(), scores.std(0, unbiased=False).mean().item()


@torch.no_grad()
def unused_if_centred(mlp, x: torch.Tensor) -> int:
    """The experts `mlp`'s router would leave unused on `x` minus its mean over tokens, weights unchanged."""
    scores = mlp.router_scores((x - x.mean(0)).to(mlp.W_enc.dtype)).float()
    return unused(loads(scores.topk(mlp.opts.top_k, dim=-1).indices, mlp.opts.n_experts))


@torch.no_grad()
def block_reading(adapter, tokens: torch.Tensor, index: int) -> dict:
    mlp = adapter.experts(index)
    view = adapter.router_view(tokens, index)
    opts, x, scores = mlp.opts, view["x"], view["scores"]
    load = loads(view["chosen"], opts.n_experts)
    between, within = score_spread(scores)
    gate = view["gate"]
    return {"block": index, "router": opts.router, "n_experts": opts.n_experts, "top_k": opts.top_k,
            "load": [round(v, 4) for v in load.tolist()], "unused": unused(load),
            "top_k_load": load.topk(opts.top_k).values.sum().item(),
            "shared_mean_share": shared_mean_share(x), "score_between": between, "score_within": within,
            "top1_gate": gate.max(-1).values.mean().item(),
            "unused_if_centred": unused_if_centred(mlp, x)}


def read_model(task, model: str, preset: str, seed: int) -> dict | None:
    """Every MoE block of one checkpoint; None when that checkpoint is not on this machine."""
    from bench import registry
    from bench.model_store import checkpoint_complete, checkpoint_stem, load_or_train

    adapter_cls = registry.model_adapter(model)
    if not hasattr(adapter_cls, "router_view"):
        raise BenchError(f"{model} has no router; this reading is for MoE models (moex, moe, switch, ...)")
    stem = checkpoint_stem(task.name, model, preset, seed)
    if not checkpoint_complete(stem):
        return None
    adapter, _, _ = load_or_train(adapter_cls, task, preset, seed, "cpu", train_if_missing=False)
    tokens = task.validation_tokens(preset, seed)[:ROWS]
    blocks = [i for i, block in enumerate(adapter.model.blocks) if hasattr(block.mlp, "router_scores")]
    return {"model": model, "seed": seed, "checkpoint": stem.name,
            "blocks": [block_reading(adapter, tokens, i) for i in blocks]}


def merged(earlier: dict | None, new: list[dict]) -> tuple[list[dict], list[dict]]:
    """The readings of an earlier file with this run's: a (model, seed) read now replaces its earlier
    reading in place, the others are kept (stamped with the earlier file's provenance when they carry
    none of their own, as files before per-reading provenance do), and new pairs follow. Returns all
    the readings and the kept ones."""
    fresh = {(r["model"], r["seed"]): r for r in new}
    readings, kept = [], []
    for reading in (earlier or {}).get("readings", []):
        key = (reading["model"], reading["seed"])
        if key in fresh:
            readings.append(fresh.pop(key))
        else:
            kept.append({"provenance": earlier["provenance"], **reading})
            readings.append(kept[-1])
    return readings + list(fresh.values()), kept


def table(readings: list[dict]) -> str:
    lines = ["model    seed block  unused  top-k load  shared mean  scores between / within  top-1 gate  "
             "unused if centred"]
    for r in readings:
        for b in r["blocks"]:
            lines.append(f"{r['model']:<8} {r['seed']:>4} {b['block']:>5}  {b['unused']:>3}/{b['n_experts']:<2} "
                         f"{b['top_k_load']:>10.2f}  {b['shared_mean_share']:>11.2f}  "
                         f"{b['score_between']:>14.3f} / {b['score_within']:.3f}  {b['top1_gate']:>10.2f}  "
                         f"{b['unused_if_centred']:>8}/{b['n_experts']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="chess")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--models", default="moex", help="comma-separated MoE models")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds whose checkpoints are on this machine")
    args = parser.parse_args(argv)

    def body():
        from bench import registry

        refuse_own_data(args.task, "the router reading (written beside the committed results)")
        task = registry.task(args.task)
        registry.check_preset(args.preset, task)
        try:
            seeds = [int(s) for s in args.seeds.split(",")]
        except ValueError:
            raise BenchError(f"--seeds {args.seeds!r} is not a comma-separated list of integers (e.g. 0,1,2)")
        torch.set_num_threads(1)
        readings = []
        for model in (m.strip() for m in args.models.split(",")):
            for seed in seeds:
                reading = read_model(task, model, args.preset, seed)
                if reading is None:
                    print(f"{model} seed {seed}: no checkpoint on this machine; not read (an earlier reading "
                          f"of it, if any, is kept)")
                else:
                    readings.append(reading)
        if not readings:
            raise BenchError("no checkpoint of those models and seeds is on this machine; nothing written")
        command = (f"python -m analysis.router_inputs --task {args.task} --preset {args.preset} "
                   f"--models {args.models} --seeds {args.seeds}")
        provenance = {"git_sha": git_sha(), "command": command,
                      "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
        readings = [{**reading, "provenance": provenance} for reading in readings]
        path = task_dir(args.task, args.preset) / "routers" / "inputs.json"
        earlier = json.loads(path.read_text()) if path.exists() else None
        if earlier is not None and (earlier["task"], earlier["preset"], earlier["rows"]) != (args.task, args.preset, ROWS):
            print(f"{path} was read over {earlier['rows']} rows, this run over {ROWS}: its readings are replaced")
            earlier = None
        readings, kept = merged(earlier, readings)
        for reading in kept:
            print(f"{reading['model']} seed {reading['seed']}: kept as read on {reading['provenance']['created']}")
        record = {"task": args.task, "preset": args.preset, "rows": ROWS, "readings": readings,
                  "provenance": provenance}
        atomic_write_text(path, json.dumps(record, indent=1) + "\n")
        print(table(readings))
        print(f"wrote {path}")

    return run_command(body, on_interrupt=FILES_WHOLE)


if __name__ == "__main__":
    sys.exit(main())
