"""A sparsity sweep of one SAE architecture on a task, so SAE latents can be plotted against L0 beside
dense neurons and MoE-X units (Karvonen's figures; the MoE-X paper's Fig. 4):

    python -m experiments.sae_sweep --arch topk --values 8,16,32,64,128          # chess, cpu preset
    python -m experiments.sae_sweep --arch standard --values 1,2,5,10

Each point trains an SAE with SAELens (cached under .cache/saes/), evaluates it with the task's own
evaluation (no random-init floor: the sweep compares SAEs with each other and with the models'
units) and lands in results/<task>/sae_sweep/<arch>.json with the metrics of every point.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time

from bench.own_data import refuse_own_data
from bench.own_dictionary import refuse_own_dictionary
from core.arguments import OneLineParser
from core.errors import BenchError, run_command
from core.threads import add_threads_argument


def sweep_adapter(architecture: str, knob: str, value):
    from adapters.sae import SAEAdapter

    cls = type(f"SAE{architecture}Sweep", (SAEAdapter,),
               {"architecture": architecture, "settings_overrides": {knob: value}})
    cls.name = f"dense+sae:{architecture}@{knob}={value}"
    return cls


def run_sweep(task_name: str, architecture: str, values: list, preset: str, seed: int, device: str,
              overrides: list[str]) -> dict:
    from bench import registry
    from bench.model_store import load_or_train
    from bench.sae_store import attach_features
    from bench.sae_training import settings_for
    from core.results import atomic_write_text, git_sha, task_dir, versions
    from core.task_config import apply_overrides

    task = registry.task(task_name)
    config = apply_overrides(task.Config(), ["random_floor=false", "legal_move_games=0", *overrides])
    knob, default = settings_for(architecture, preset).sparsity_knob()
    kind = type(default)
    points = []
    for value in values:
        started = time.time()
        adapter_cls = sweep_adapter(architecture, knob, kind(value))
        adapter, _, stem = load_or_train(adapter_cls, task, preset, seed, device, train_if_missing=False)
        attach_features(adapter, task, preset, seed, config, device, role="trained")
        out = task.evaluate(adapter, None, config, preset, seed)
        points.append({knob: kind(value), "metrics": out["metrics"], "seconds": round(time.time() - started, 1)})
        print(f"{adapter_cls.name}: L0 {out['metrics']['l0']:.1f}, coverage {out['metrics']['coverage']:.3f}, "
              f"reconstruction {out['metrics']['reconstruction']:.3f}, loss recovered "
              f"{out['metrics']['loss_recovered']:.3f} ({time.time() - started:.0f} s)", flush=True)
    record = {"task": task_name, "architecture": architecture, "knob": knob, "preset": preset, "seed": seed,
              "model": "dense", "checkpoint": stem.name, "config": dataclasses.asdict(config),
              "settings": dataclasses.asdict(settings_for(architecture, preset)),
              "provenance": {"git_sha": git_sha(), "versions": versions(),
                             "command": f"python -m experiments.sae_sweep --arch {architecture} "
                                        f"--values {','.join(str(v) for v in values)}"},
              "points": points}
    path = task_dir(task_name, preset) / "sae_sweep" / f"{architecture}.json"
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")
    print(f"wrote {path}")
    return record


def main(argv=None) -> int:
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", required=True)
    parser.add_argument("--values", required=True, help="comma-separated values of the sparsity setting")
    parser.add_argument("--task", default="chess")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    add_threads_argument(parser)
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="task config settings")
    def body():
        args = parser.parse_args(argv)
        refuse_own_data(args.task, "the SAE sweep (written beside the committed results)")
        refuse_own_dictionary("the SAE sweep (written beside the committed results)")
        _run(args)

    return run_command(body)


def _run(args) -> None:
    from adapters.sae import ARCHITECTURES

    if args.arch not in ARCHITECTURES:
        raise BenchError(f"SAE architecture {args.arch!r} unknown; choose one of {', '.join(ARCHITECTURES)}")
    try:
        values = [float(v) for v in args.values.split(",") if v]
    except ValueError:
        raise BenchError(f"--values {args.values!r} is not a comma-separated list of numbers") from None
    import torch

    torch.set_num_threads(args.threads)
    run_sweep(args.task, args.arch, values, args.preset, args.seed, args.device, args.overrides)


if __name__ == "__main__":
    sys.exit(main())
