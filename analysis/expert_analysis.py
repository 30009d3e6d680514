"""What the paper's Fig. 6 and Fig. 9 show, measured on our MoE checkpoints and written as results.

- Fig. 6: a 2-D projection of expert encoder weights (vanilla MoE against MoE-X). Every unit of every
  expert at the scored layer is its encoder column (d_model numbers); a seeded sample of units per
  expert is projected on the first two principal components of all sampled units, and the share of
  variance those explain is recorded. Experts that specialise sit apart; PCA rather than t-SNE so the
  picture is deterministic and its axes mean something.
- Fig. 9: the router's score of each (token, expert) pair against the units that expert would fire on
  that token (realised L0), a seeded sample of pairs over the validation text, and their correlation.

`python -m analysis.expert_analysis --task chess --preset cpu --models moe,moex` writes
`results/<task>/experts/<model>.json`; `make figures` draws from those files alone.
"""

from __future__ import annotations

import datetime
import json
import sys

import torch

from adapters.moe import router_active_corr
from bench.own_data import refuse_own_data
from core.arguments import OneLineParser
from core.errors import FILES_WHOLE, BenchError, run_command
from core.results import atomic_write_text, git_sha, task_dir

UNITS_PER_EXPERT = 64
PAIRS = 2000


@torch.no_grad()
def analyse(adapter, tokens: torch.Tensor, layer: int, seed: int) -> dict:
    index = adapter.resolve_layer(layer)
    if not hasattr(adapter, "router_view"):
        raise BenchError(f"{adapter.name} has no experts at layer {index}; expert analysis is for MoE models")
    mlp = adapter.experts(index)
    gen = torch.Generator().manual_seed(seed)
    m, d, units = mlp.W_enc.shape
    pick = torch.stack([torch.randperm(units, generator=gen)[:UNITS_PER_EXPERT] for _ in range(m)])  # (M, u)
    columns = torch.stack([mlp.W_enc[e, :, pick[e]].T for e in range(m)]).float()  # (M, u, d)
    flat = columns.reshape(-1, d)
    centred = flat - flat.mean(0)
    _, s, v = torch.linalg.svd(centred, full_matrices=False)
    coords = (centred @ v[:2].T).reshape(m, -1, 2)
    explained = (s[:2] ** 2).sum().item() / (s ** 2).sum().item()

    view = adapter.router_view(tokens, index)
    scores, active = view["scores"], view["active"]
    sample = torch.randperm(scores.numel(), generator=gen)[:PAIRS]
    return {
        "layer": index, "router": mlp.opts.router, "n_experts": m, "d_expert": units,
        "encoder_pca": {"units_per_expert": UNITS_PER_EXPERT, "variance_explained_2d": explained,
                        "coords": [[[round(a, 4), round(b, 4)] for a, b in expert.tolist()] for expert in coords]},
        "router_vs_active": {"corr": router_active_corr(scores, active), "n_pairs": scores.numel(),
                             "expert": (sample % m).tolist(),
                             "score": [round(v, 5) for v in scores.flatten()[sample].tolist()],
                             "active_units": active.flatten()[sample].int().tolist()},
    }


def write_analysis(task_name: str, model: str, preset: str, seed: int = 0, layer: int | None = None) -> str:
    from bench import registry
    from bench.model_store import load_or_train

    task = registry.task(task_name)
    registry.check_preset(preset, task)
    adapter_cls = registry.model_adapter(model)
    adapter, meta, stem = load_or_train(adapter_cls, task, preset, seed, "cpu", train_if_missing=False)
    layer = task.Config().layer if layer is None else layer
    tokens = task.validation_tokens(preset, seed)[:64]
    record = {"task": task_name, "model": model, "preset": preset, "seed": seed, "checkpoint": stem.name,
              "provenance": {"git_sha": git_sha(), "command": f"python -m analysis.expert_analysis --task {task_name} "
                                                               f"--preset {preset} --models {model}",
                             "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")},
              **analyse(adapter, tokens, layer, seed)}
    path = task_dir(task_name, preset) / "experts" / f"{model}.json"
    atomic_write_text(path, json.dumps(record) + "\n")
    return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="chess")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--models", default="moex", help="comma-separated MoE models with checkpoints")
    args = parser.parse_args(argv)

    def body():
        refuse_own_data(args.task, "the expert analysis (written beside the committed results)")
        torch.set_num_threads(1)
        for model in args.models.split(","):
            print(f"wrote {write_analysis(args.task, model.strip(), args.preset)}")

    return run_command(body, on_interrupt=FILES_WHOLE)


if __name__ == "__main__":
    sys.exit(main())
