"""How each MoE result's router spreads tokens over its experts, read from the results alone.

Every MoE result keeps each expert's share of the (token, expert) assignments at the scored layer
(`details.model.expert_load`, measured on the statistics games). This prints, per model, folder and
seed: the experts taking under a quarter of their even share (unused: `details.model.experts_unused`,
or for results scored before that field, counted from the stored loads, which are rounded to 4
decimals), the k busiest experts' share (`router_collapsed` at 90%), and the share of units that never
fire (`dead_fraction`).

    python -m analysis.expert_loads --task chess --preset cpu
"""

from __future__ import annotations

import json
import sys

from adapters.moe import UNUSED_SHARE
from core.arguments import OneLineParser
from core.errors import run_command
from core.results import NOT_VARIANTS, load_results, result_dir, result_files, with_seeds


def unused_experts(load: list[float]) -> int:
    return sum(share < UNUSED_SHARE / len(load) for share in load)


def _holds_results(folder) -> bool:
    """Whether a folder holds results of the contract (not, say, the expert analyses' own files)."""
    for path in result_files(folder):
        try:
            if "schema_version" in json.loads(path.read_text()):
                return True
        except (OSError, ValueError):
            return True  # a damaged result: load_results names it
    return False


def rows(task: str, preset: str) -> list[tuple[str, str, int, int, float, float]]:
    """(folder, model, seed, unused experts, top-k load, dead fraction) of every MoE result of the
    preset: its main folder and its variants (layer.-1, ...), every seed."""
    from bench.registry import PRESETS

    main = result_dir(task, preset)
    folders = [main] + [f for f in sorted(main.iterdir()) if f.is_dir() and f.name not in (*PRESETS, *NOT_VARIANTS)]
    out = []
    for folder in filter(_holds_results, folders):
        for record in (r for top in load_results(folder) for r in with_seeds(folder, top)):
            model = record.get("details", {}).get("model")
            if isinstance(model, dict) and model.get("expert_load"):
                load = model["expert_load"]
                unused = model.get("experts_unused", unused_experts(load))
                top_k = sum(sorted(load, reverse=True)[:model["top_k"]])
                out.append((folder.name if folder != main else ".", record["model"], record["provenance"]["seed"],
                            unused, top_k, record["metrics"].get("dead_fraction", float("nan"))))
    return sorted(out)


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="chess")
    parser.add_argument("--preset", default="cpu")
    args = parser.parse_args(argv)

    def body():
        print("| folder | model | seed | experts unused | k busiest experts' load | units never firing |")
        print("|---|---|---|---|---|---|")
        for folder, model, seed, unused, top_k, dead in rows(args.task, args.preset):
            print(f"| {folder} | {model} | {seed} | {unused} | {top_k:.2f} | {dead:.3f} |")

    return run_command(body)


if __name__ == "__main__":
    sys.exit(main())
