"""Figures of the superposition task, from its results JSON alone: features per dimension against
1/(1 - S) (their Fig. 3) per model and configuration, and expert specialisation by gate
initialisation (their Table 1)."""

from __future__ import annotations

import statistics
from collections import defaultdict

from core.results import load_result, result_dir, result_files, save_figure


def write_figures(preset: str, variant: str | None = None) -> list:
    folder = result_dir("superposition", preset, variant)
    records = [load_result(p) for p in result_files(folder)]
    records = [r for r in records if r.get("details", {}).get("sweep")]
    if not records:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for r in records:
        curves = defaultdict(lambda: defaultdict(list))
        for row in r["details"]["sweep"]:
            curves[row["config"]][row["density"]].append(row["features_per_dim"])
        for config, by_density in sorted(curves.items()):
            xs = sorted(by_density, reverse=True)
            ax.plot([1 / d for d in xs], [statistics.fmean(by_density[d]) for d in xs], marker="o", ms=3,
                    label=f"{r['model']} {config}")
    ax.set_xscale("log")
    ax.set(xlabel="1 / (1 - S) = 1 / feature density (log)", ylabel="features per dimension",
           title=f"Superposition in toy models ({preset} preset{f', {variant}' if variant else ''}; "
                 "mean over seeds)")
    ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    paths = [folder / "features_per_dimension.png"]
    save_figure(fig, paths[0], dpi=120)
    plt.close(fig)

    special = [(r["model"], s) for r in records for s in r["details"].get("specialisation", [])]
    if special:
        groups = defaultdict(list)
        for model, s in special:
            groups[f"{model}\n{s['gate_init']}"].append(s)
        names = sorted(groups)
        fig, ax = plt.subplots(figsize=(max(5.0, 1.6 * len(names)), 3.8))
        xs = range(len(names))
        ax.bar([x - 0.2 for x in xs], [statistics.fmean(s["usage_baseline"] for s in groups[n]) for n in names],
               0.4, label="as drawn")
        ax.bar([x + 0.2 for x in xs], [statistics.fmean(s["usage_clamped"] for s in groups[n]) for n in names],
               0.4, label="its monosemantic features set to 1")
        ax.set_xticks(list(xs), names, fontsize=8)
        ax.set(ylabel="share of inputs routed to the expert", ylim=(0, 1),
               title="Expert specialisation by gate initialisation")
        ax.legend(fontsize=8)
        fig.tight_layout()
        paths.append(folder / "specialisation.png")
        save_figure(fig, paths[-1], dpi=120)
        plt.close(fig)
    return paths
