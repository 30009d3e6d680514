"""`make figures`: the paper's figures and tables, from results JSON alone (no recomputation).

Each figure goes to `results/figures/<name>.png` and `.pdf` with `<name>.txt`, a caption naming the
results files (and their git shas) it was drawn from. A figure whose results are absent is skipped
and the reason printed; nothing is ever plotted as zero for missing data.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from pathlib import Path

from bench.report import _seed_stats
from core.errors import FILES_WHOLE, run_command
from core.results import atomic_write_text, load_results, results_root, save_figure, task_dir, with_seeds


def out_dir() -> Path:
    return results_root() / "figures"


def _records(task: str, preset: str) -> list[dict]:
    folder = task_dir(task, preset)
    return load_results(folder) if folder.exists() else []


def _sources(paths: list[Path], shas: list[str]) -> str:
    root = results_root()
    lines = [f"- {Path(p).relative_to(root) if Path(p).is_relative_to(root) else p} (git {s})"
             for p, s in zip(paths, shas)]
    return "Drawn from:\n" + "\n".join(lines)


def _save(fig, name: str, caption: str) -> list[Path]:
    import matplotlib.pyplot as plt

    folder = out_dir()
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{name}.png", folder / f"{name}.pdf"]
    for path in paths:  # no creation date in the PDF: the same results give the same bytes
        save_figure(fig, path, dpi=130, bbox_inches="tight",
                    metadata={"CreationDate": None} if path.suffix == ".pdf" else None)
    plt.close(fig)
    atomic_write_text(folder / f"{name}.txt", caption.strip() + "\n")
    return paths + [folder / f"{name}.txt"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# --- tables ---------------------------------------------------------------------------------------

def paper_tables(preset: str) -> list[Path] | str:
    from tasks.chess.paper_tables import render

    records = _records("chess", preset)
    if not records:
        return f"no chess results at the {preset} preset"
    folder = task_dir("chess", preset)
    stats = {}
    for r in records:
        seeds = with_seeds(folder, r)
        stats[r["model"]] = _seed_stats(seeds)
    lines = render(stats, preset)
    if not lines:
        return f"none of the paper's models has chess results at the {preset} preset"
    name = f"chess_paper_tables_{preset}"
    folder_out = out_dir()
    folder_out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder_out / f"{name}.md", "\n".join(lines) + "\n")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["model", "n_seeds", "metric", "mean", "std"])
    for model, s in sorted(stats.items()):
        for metric in ("val_loss", "coverage", "reconstruction"):
            if metric in s["mean"]:
                writer.writerow([model, s["n_seeds"], metric, s["mean"][metric], s["std"].get(metric, "")])
    atomic_write_text(folder_out / f"{name}.csv", buf.getvalue())
    caption = (f"Our chess numbers ({preset} preset) as the MoE-X paper's Tables 1, 3 and 4, its numbers beside.\n"
               + _sources([r["_path"] for r in records], [r["provenance"]["git_sha"] for r in records]))
    atomic_write_text(folder_out / f"{name}.txt", caption + "\n")
    return [folder_out / f"{name}.md", folder_out / f"{name}.csv", folder_out / f"{name}.txt"]


# --- figures --------------------------------------------------------------------------------------

def coverage_vs_reconstruction(preset: str) -> list[Path] | str:
    records = [r for r in _records("chess", preset) if "coverage" in r["metrics"]]
    if not records:
        return f"no chess results at the {preset} preset"
    folder = task_dir("chess", preset)
    points, paths, shas = [], [], []
    for r in records:
        seeds = with_seeds(folder, r)
        stats = _seed_stats(seeds)
        points.append((r["model"], len(seeds), stats["mean"]["coverage"], stats["mean"]["reconstruction"],
                       stats["std"].get("coverage", 0.0), stats["std"].get("reconstruction", 0.0),
                       stats["mean"].get("coverage_random_init"), stats["mean"].get("reconstruction_random_init")))
        paths += [s["_path"] for s in seeds]
        shas += [s["provenance"]["git_sha"] for s in seeds]
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.2, 4.6))
    lines = []
    for i, (model, n, cov, rec, cov_std, rec_std, cov_floor, rec_floor) in enumerate(sorted(points, key=lambda p: p[2])):
        # a model with several seeds is its mean with +-1 std bars: seed-to-seed spread is the yardstick
        bar = ax.errorbar(cov, rec, xerr=cov_std if n > 1 else None, yerr=rec_std if n > 1 else None, fmt="o", ms=5,
                          capsize=2, elinewidth=0.8)
        floor, colour = "", bar.lines[0].get_color()
        if cov_floor is not None and rec_floor is not None:
            # the same architecture at random init, hollow, joined to its trained point: the gain is the line
            ax.plot([cov_floor, cov], [rec_floor, rec], color=colour, lw=0.6, alpha=0.5)
            ax.plot(cov_floor, rec_floor, "o", ms=5, mfc="none", color=colour)
            floor = f"; random-init floor {cov_floor:.3f}, {rec_floor:.3f}"
        label = f"{model} ({n} seeds)" if n > 1 else model
        # neighbours alternate above and below their point so close labels do not overlap
        # in the point's colour, so a label that lands nearer another point still names its own
        ax.annotate(label, (cov, rec), fontsize=7, xytext=(4, 4 if i % 2 else -10), textcoords="offset points",
                    color=colour)
        if n > 1:
            lines.append(f"{model}: coverage {cov:.3f} ± {cov_std:.3f}, reconstruction {rec:.3f} ± {rec_std:.3f} "
                         f"({n} seeds){floor}")
        else:
            lines.append(f"{model}: coverage {cov:.3f}, reconstruction {rec:.3f} (1 seed){floor}")
    ax.set(xlabel="coverage (board state, mean best F1)", ylabel="reconstruction (board state F1)",
           title=f"Chess: coverage against reconstruction per model ({preset} preset)")
    ax.grid(alpha=0.3)
    caption = (f"Coverage against reconstruction of each model's features on the chess board state ({preset} "
               f"preset): the mean over seeds with ±1 std bars where more than one seed ran, else seed 0; each "
               f"model's random-init floor (the same architecture untrained, mean over seeds) hollow, joined to it.\n"
               + "\n".join(lines) + "\n" + _sources(paths, shas))
    return _save(fig, f"chess_coverage_vs_reconstruction_{preset}", caption)


def coverage_vs_l0(preset: str) -> list[Path] | str:
    records = [r for r in _records("chess", preset) if "l0" in r["metrics"] and "coverage" in r["metrics"]]
    sweeps = sorted((task_dir("chess", preset) / "sae_sweep").glob("*.json"))
    if not records and not sweeps:
        return f"no chess results or SAE sweeps at the {preset} preset"
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    paths, shas = [], []
    for path in sweeps:
        sweep = json.loads(path.read_text())
        pts = sorted(sweep["points"], key=lambda p: p["metrics"]["l0"])
        ax.plot([p["metrics"]["l0"] for p in pts], [p["metrics"]["coverage"] for p in pts], marker="o", ms=4,
                label=f"SAE sweep ({sweep['architecture']}, {sweep['knob']} = "
                      f"{', '.join(str(p[sweep['knob']]) for p in pts)})")
        paths.append(path)
        shas.append(sweep["provenance"]["git_sha"])
    rightmost = max((r["metrics"]["l0"] for r in records), default=None)
    for i, r in enumerate(sorted(records, key=lambda r: r["metrics"]["coverage"])):
        m = r["metrics"]
        ax.scatter(m["l0"], m["coverage"], marker="s", s=28, zorder=3)
        # the rightmost point's name goes to its left, inside the axes rather than across the frame;
        # neighbours in coverage alternate above and below their point so close labels do not overlap
        left = len(records) > 1 and m["l0"] == rightmost
        ax.annotate(r["model"], (m["l0"], m["coverage"]), fontsize=7, xytext=(-4 if left else 4, 3 if i % 2 else -9),
                    textcoords="offset points", ha="right" if left else "left")
        paths.append(r["_path"])
        shas.append(r["provenance"]["git_sha"])
    ax.set_xscale("log")
    ax.set(xlabel="L0 (features active per token, log scale)", ylabel="coverage (board state)",
           title=f"Chess: coverage against sparsity (the paper's Fig. 4; {preset} preset)")
    ax.grid(alpha=0.3)
    if sweeps:
        ax.legend(fontsize=7)
    caption = "Coverage against L0: every model's features, and SAEs swept over their sparsity knob.\n" + \
        _sources(paths, shas)
    return _save(fig, f"chess_coverage_vs_l0_{preset}", caption)


def _expert_analyses(preset: str) -> list[dict] | str:
    """The files analysis/expert_analysis.py wrote for the chess models at this preset, or why none."""
    folder = task_dir("chess", preset) / "experts"
    analyses = [json.loads(p.read_text()) | {"_path": p} for p in sorted(folder.glob("*.json"))] \
        if folder.exists() else []
    return analyses or (f"no expert analyses in {folder} "
                        f"(python -m analysis.expert_analysis --preset {preset} --models moe,moex)")


def expert_encoders(preset: str) -> list[Path] | str:
    analyses = _expert_analyses(preset)
    if isinstance(analyses, str):
        return analyses
    plt = _plt()
    # constrained layout: each panel's y label gets room instead of touching the panel to its left
    fig, axes = plt.subplots(1, len(analyses), figsize=(4.4 * len(analyses), 4.2), squeeze=False, layout="constrained")
    for ax, a in zip(axes[0], analyses):
        pca = a["encoder_pca"]
        for e, pts in enumerate(pca["coords"]):
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=6, label=f"expert {e}")
        ax.set(title=f"{a['model']} (router: {a['router']}), layer {a['layer']}\n"
                     f"PC1+PC2 explain {pca['variance_explained_2d']:.0%} of the variance",
               xlabel="PC 1", ylabel="PC 2")
        ax.title.set_fontsize(9)
    axes[0][-1].legend(fontsize=6, markerscale=2, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    caption = (f"Encoder columns of {analyses[0]['encoder_pca']['units_per_expert']} sampled units per expert, "
               f"projected on their first two principal components (the paper's Fig. 6 uses t-SNE).\n"
               + _sources([a["_path"] for a in analyses], [a["provenance"]["git_sha"] for a in analyses]))
    return _save(fig, f"expert_encoders_{preset}", caption)


def router_vs_active(preset: str) -> list[Path] | str:
    analyses = _expert_analyses(preset)
    if isinstance(analyses, str):
        return analyses
    plt = _plt()
    fig, axes = plt.subplots(1, len(analyses), figsize=(4.4 * len(analyses), 4.0), squeeze=False, layout="constrained")
    for ax, a in zip(axes[0], analyses):
        rv = a["router_vs_active"]
        ax.scatter(rv["score"], rv["active_units"], s=4, alpha=0.4, c=rv["expert"], cmap="tab10")
        ax.set(title=f"{a['model']} (router: {a['router']}): r = {rv['corr']:.3f}", xlabel="router score",
               ylabel=f"units the expert fires (of {a['d_expert']})")
        ax.title.set_fontsize(9)
    caption = ("Router score of (token, expert) pairs against the units that expert fires on the token "
               "(realised L0); the paper's Fig. 9 claims r < -0.95 for MoE-X's sparsity router. r over all "
               "pairs, points a seeded sample.\n"
               + _sources([a["_path"] for a in analyses], [a["provenance"]["git_sha"] for a in analyses]))
    return _save(fig, f"router_vs_active_{preset}", caption)


def detection_by_decile(preset: str) -> list[Path] | str:
    records = [r for r in _records("language", preset)
               if r.get("details", {}).get("autointerp", {}).get("detection_by_decile")]
    if not records:
        return f"no language auto-interp results at the {preset} preset"
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.6, 4.2))
    for r in records:
        by = r["details"]["autointerp"]["detection_by_decile"]
        deciles = [d for d in map(str, range(10)) if d in by]
        ax.plot([int(d) + 1 for d in deciles], [by[d] for d in deciles], marker="o", ms=3,
                label=f"{r['model']} ({r['details']['autointerp']['backend']}; "
                      f"non-activating {by.get('negative', float('nan')):.2f})")
    ax.set(xlabel="activation decile (1 weakest, 10 strongest)", ylabel="detection accuracy on activating examples",
           ylim=(0, 1.02), title=f"Language: detection by activation decile (the paper's Fig. 8; {preset})")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    caption = ("Share of each decile's activating test examples the scorer says fire, mean over scored "
               "features; the legend gives the accuracy on non-activating examples.\n"
               + _sources([r["_path"] for r in records], [r["provenance"]["git_sha"] for r in records]))
    return _save(fig, f"language_detection_by_decile_{preset}", caption)


def width_sweep(preset: str) -> list[Path] | str:
    """The paper's Fig. 3/5: coverage and reconstruction against model width, over the `short` recipe
    at the widths of WIDTH_SWEEP (drawn once, with the `short` figures)."""
    from tasks.chess.presets import PRESETS, WIDTH_SWEEP

    if preset != "short":
        return "the width sweep is drawn from the short recipe's widths, with the short figures"
    points: dict[str, list] = {}
    for p in WIDTH_SWEEP:
        for r in _records("chess", p):
            if "coverage" in r["metrics"] and "reconstruction" in r["metrics"]:
                points.setdefault(r["model"], []).append((PRESETS[p].d_model, r))
    single = sorted(m for m, v in points.items() if len(v) < 2)
    points = {m: sorted(v, key=lambda t: t[0]) for m, v in points.items() if len(v) >= 2}
    if not points:
        return (f"no model has results at two or more widths of {', '.join(WIDTH_SWEEP)} "
                f"(run `make grid TASK=chess PRESET=short-w128` and `PRESET=short-w384`)")
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9.6, 4.0), layout="constrained")  # room for the shared x label
    with_floor = set()
    for model, pts in sorted(points.items()):
        widths = [w for w, _ in pts]
        for ax, metric in zip(axes, ("coverage", "reconstruction")):
            line, = ax.plot(widths, [r["metrics"][metric] for _, r in pts], marker="o", ms=4, label=model)
            floor = [r["metrics"].get(f"{metric}_random_init") for _, r in pts]
            if all(f is not None for f in floor):  # the same architecture untrained, in the model's colour
                ax.plot(widths, floor, ls="--", lw=1, color=line.get_color())
                with_floor.add(model)
    for ax, metric in zip(axes, ("coverage", "reconstruction")):
        ax.set(ylabel=f"{metric} (board state F1)", xticks=[PRESETS[p].d_model for p in WIDTH_SWEEP])
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("Chess: coverage and reconstruction against model width (the paper's Fig. 3/5; short recipe)")
    fig.supxlabel("d_model (the MLP's active hidden width is 4 x d_model)", fontsize=10)  # one label: two would collide
    used = [r for pts in points.values() for _, r in pts]
    absent = sorted({f"{m} at {p}" for m in points for p in WIDTH_SWEEP}
                    - {f"{r['model']} at {r['preset']}" for r in used})
    short = PRESETS["short"]
    caption = (f"Seed 0 of each model trained with the `short` recipe ({short.train.steps:,} steps of "
               f"{short.train.batch_size} x {short.n_ctx} tokens, {short.format} format) at every width, "
               f"{short.n_layers} layers and {short.n_heads} heads throughout."
               + (f" Dashed: the random-init floor of {', '.join(sorted(with_floor))}." if with_floor else "")
               + (f" Absent: {', '.join(absent)}." if absent else "")
               + (f" Not drawn (one width only): {', '.join(single)}." if single else "")
               + "\n" + _sources([r["_path"] for r in used], [r["provenance"]["git_sha"] for r in used]))
    return _save(fig, "chess_width_sweep", caption)


def _scored_block(record: dict) -> int | None:
    """The block a result's features were read at, from the hook it names (`blocks.<i>....`), so that
    a `layer=-1` and a `layer=3` run of a 4-block model are the same block, whatever the model's depth."""
    match = re.match(r"blocks\.(\d+)\.", str(record.get("details", {}).get("feature_hook", "")))
    return int(match[1]) if match else None


def coverage_by_block(preset: str) -> list[Path] | str:
    """Coverage and reconstruction over the random-init floor at every block a model was scored at:
    the default block (results/chess/) and the `layer=N` variants (results/chess/layer.N*/), one line
    per model and site. Which block to score is a choice (docs/chess.md section 1); this shows what it
    changes."""
    folder = task_dir("chess", preset)
    lines_by_kind: dict[str, dict[int, dict]] = {}
    for place in [folder, *sorted(folder.glob("layer.*"))] if folder.exists() else []:
        for r in load_results(place):
            m, block = r["metrics"], _scored_block(r)
            if block is None or "coverage_random_init" not in m or "reconstruction_random_init" not in m:
                continue
            site = r.get("config", {}).get("site", "mlp")
            blocks = lines_by_kind.setdefault(r["model"] if site == "mlp" else f"{r['model']} ({site})", {})
            if block in blocks:  # layer=-1 and layer=3 of one 4-block model: the first folder's stays
                print(f"coverage_by_block: {r['_path']} scores block {block} again; drawn from {blocks[block]['_path']}")
                continue
            blocks[block] = r
    lines_by_kind = {k: blocks for k, blocks in lines_by_kind.items() if len(blocks) >= 2}
    if not lines_by_kind:
        return f"no chess model at the {preset} preset has results at two or more blocks (ARGS=\"layer=N\")"
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9.6, 4.0), layout="constrained")
    lines, used = [], []
    for kind, blocks in sorted(lines_by_kind.items()):
        scores = {b: blocks[b]["metrics"] for b in sorted(blocks)}
        for ax, metric in zip(axes, ("coverage", "reconstruction")):
            ax.plot(list(scores), [m[metric] - m[f"{metric}_random_init"] for m in scores.values()], marker="o",
                    ms=4, label=kind)
        lines.append(f"{kind}: " + "; ".join(
            f"block {b}: coverage {m['coverage']:.3f} (floor {m['coverage_random_init']:.3f}), reconstruction "
            f"{m['reconstruction']:.3f} (floor {m['reconstruction_random_init']:.3f})" for b, m in scores.items()))
        used += [blocks[b] for b in sorted(blocks)]
    ticks = sorted({b for blocks in lines_by_kind.values() for b in blocks})
    for ax, metric in zip(axes, ("coverage", "reconstruction")):
        ax.axhline(0, color="grey", lw=0.6)
        ax.set(ylabel=f"{metric} minus its random-init floor", xticks=ticks)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Chess: board-state features above their random-init floor, by block ({preset} preset, seed 0)")
    fig.supxlabel("block index (0 = the first block; the features read at that block)", fontsize=10)
    caption = (f"Seed 0 of each model scored at several blocks ({preset} preset): the default block (layer "
               f"counted from the end, docs/chess.md section 1) and the `layer=N` runs. Each point is the score "
               f"minus the same architecture's score at random init, at the same block.\n" + "\n".join(lines) + "\n"
               + _sources([r["_path"] for r in used], [r["provenance"]["git_sha"] for r in used]))
    return _save(fig, f"chess_coverage_by_block_{preset}", caption)


FIGURES = [paper_tables, coverage_vs_reconstruction, coverage_vs_l0, expert_encoders, router_vs_active,
           detection_by_decile, width_sweep, coverage_by_block]


# Each figure's file name at a preset (None: drawn at another preset only), so that a figure skipped
# for want of results takes its earlier files with it instead of leaving them to describe old results.
STEMS = {paper_tables: "chess_paper_tables_{preset}",
         coverage_vs_reconstruction: "chess_coverage_vs_reconstruction_{preset}",
         coverage_vs_l0: "chess_coverage_vs_l0_{preset}", expert_encoders: "expert_encoders_{preset}",
         router_vs_active: "router_vs_active_{preset}", detection_by_decile: "language_detection_by_decile_{preset}",
         width_sweep: lambda preset: "chess_width_sweep" if preset == "short" else None,
         coverage_by_block: "chess_coverage_by_block_{preset}"}


def _remove_stale(figure, preset: str) -> None:
    stem = STEMS[figure]
    name = stem(preset) if callable(stem) else stem.format(preset=preset)
    for path in sorted(out_dir().glob(f"{name}.*")) if name else []:
        path.unlink()
        print(f"removed {path} (drawn from results that are gone)")


def make_figures(presets=("cpu", "short")) -> list[Path]:
    written = []
    for preset in presets:
        for figure in FIGURES:
            got = figure(preset)
            if isinstance(got, str):
                print(f"skipped {figure.__name__} ({preset}): {got}")
                _remove_stale(figure, preset)
            else:
                written += got
                for p in got:
                    print(f"wrote {p}")
    return written


def main(argv: list[str] | None = None) -> int:
    from core.arguments import OneLineParser

    parser = OneLineParser(prog="python -m analysis.figures", description="Draw the figures of the "
                           "committed results into results/figures/ (what `make figures` runs).")
    parser.add_argument("presets", nargs="*", default=["cpu", "short"], help="presets to draw (default: cpu short)")
    args = parser.parse_args(argv)
    return run_command(lambda: make_figures(tuple(args.presets)) and None, on_interrupt=FILES_WHOLE)


if __name__ == "__main__":
    sys.exit(main())
