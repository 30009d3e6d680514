"""Tables and a figure for one task, rendered from its results JSON alone (no recomputation)."""

from __future__ import annotations

import csv
import importlib
import io
import statistics
from pathlib import Path

from bench.headline import COUNTS, FLAGS, NO_FLOOR, flags, models_table, other_measurement
from bench.model_identity import summary_lines
from core.errors import BenchError
from core.metrics import declared
from core.results import atomic_write_text, load_results, result_dir, save_figure, with_seeds


def _columns(task: str, records: list[dict]) -> list[str]:
    """The summary's full table: the task's declared metrics in their order, then any other metric
    the results hold (a family's members, one per configuration), so none is hidden."""
    names = [m.name for m in declared(task) if not m.name.endswith("*")]
    return names + sorted({k for r in records for k in r["metrics"]} - set(names))


def paper_numbers(task: str, preset: str | None = None) -> dict:
    """The paper's numbers to print beside ours: the task's `comparable(preset)` when it defines one
    (it drops what the preset cannot be compared with), else its PAPER_TABLE_1."""
    try:
        module = importlib.import_module(f"tasks.{task}.paper_numbers")
    except ImportError:
        return {}
    if preset is not None and hasattr(module, "comparable"):
        return module.comparable(preset)
    return getattr(module, "PAPER_TABLE_1", {})


def _seed_stats(seeds: list[dict]) -> dict:
    """Mean and spread over seeds of every metric (std needs two or more seeds), and the flags the seeds
    raised as the headline words them (` [mostly dead]`, or ""). A metric that one seed lacks and another
    has is refused: its mean would count fewer seeds than n_seeds says. One declared `added_later` is
    left out instead (seeds scored before it existed lack it). Each seed's details come along for the
    tables that group what the means pool."""
    from core.metrics import lookup

    task = seeds[0].get("task")
    names = sorted({k for s in seeds for k in s["metrics"]})
    for k in list(names):
        lacking = [s for s in seeds if k not in s["metrics"]]
        declared_as = lookup(task, k) if lacking and isinstance(task, str) else None
        if lacking and declared_as is not None and declared_as.added_later:
            names.remove(k)
        elif lacking:
            raise BenchError(f"{lacking[0].get('_path', 'a seed result')}: metric {k!r} is missing while another seed "
                             f"of {seeds[0]['model']} has it; rerun that seed, or delete its file to leave it out")
    values = {k: [s["metrics"][k] for s in seeds] for k in names}
    # The flags are worded here, from every seed that measured them, so that a task's own tables say
    # them as the headline does without importing bench (and an added_later flag left out above counts).
    return {"n_seeds": len(seeds), "mean": {k: statistics.fmean(v) for k, v in values.items()},
            "std": {k: statistics.stdev(v) for k, v in values.items() if len(v) > 1}, "values": values,
            "flags": flags(seeds), "details": [s.get("details") for s in seeds]}


def _paper_tables(task: str, stats: dict, preset: str) -> list[str]:
    """The task's own layout of our numbers beside the paper's tables, when it has one."""
    try:
        render = importlib.import_module(f"tasks.{task}.paper_tables").render
    except ImportError:
        return []
    return render(stats, preset)


def _trained_elsewhere(seeds_of: dict[str, list[dict]]) -> list[str]:
    """A line naming the results whose checkpoints were not trained on a CPU: same recipe and data,
    but other float arithmetic, so a reader comparing seeds should know."""
    where: dict[str, list[str]] = {}
    for model, seeds in seeds_of.items():
        for record in seeds:
            device = record.get("provenance", {}).get("trained", {}).get("device") or "cpu"
            if not device.startswith("cpu"):
                where.setdefault(device, []).append(f"{model} seed {record.get('provenance', {}).get('seed')}")
    return [f"Trained on {device}, same recipe and data: {', '.join(runs)}. Every other checkpoint was trained "
            f"on this machine's CPU." for device, runs in where.items()] + ([""] if where else [])


def _direction(metric) -> str:
    return {True: " (higher is better)", False: " (lower is better)", None: ""}[metric.higher_is_better]


def _fmt(value) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def headline_lines(task: str, preset: str = "cpu", variant: str | None = None) -> list[str]:
    """The compact table of every model of a task's results folder (what `make report` prints)."""
    folder = result_dir(task, preset, variant)
    seeds_of = {r["model"]: with_seeds(folder, r) for r in load_results(folder)}
    for seeds in seeds_of.values():
        _seed_stats(seeds)  # refuses a seed lacking a metric another has
    return models_table(task, seeds_of, paper_numbers(task, preset))


def write_summary(task: str, preset: str = "cpu", variant: str | None = None) -> list[Path]:
    """summary.md, summary.csv and scores.png in the task's results folder (or its variant's);
    returns the paths."""
    folder = result_dir(task, preset, variant)
    records = load_results(folder)
    if not records:
        raise BenchError(f"no results in {folder}; run `make bench TASK={task} PRESET={preset}` first")
    columns = _columns(task, records)
    paper = paper_numbers(task, preset)
    paper_cols = [c for c in ("val_loss", "coverage", "reconstruction") if any(c in v for v in paper.values())]
    spread = [m.name for m in declared(task) if m.spread]
    header = (["model", "preset", "n_seeds"] + columns + [f"{c}_{s}" for c in spread for s in ("mean", "std")]
              + [f"paper_{c}" for c in paper_cols])
    rows, by_model, seeds_of = [], {}, {}
    for r in records:
        ref = paper.get(r["model"], {})
        seeds = with_seeds(folder, r)
        seeds_of[r["model"]] = seeds
        by_model[r["model"]] = stat = _seed_stats(seeds)
        cells = [v for c in spread for v in (stat["mean"].get(c), stat["std"].get(c))]
        rows.append([r["model"], r["preset"], len(seeds)] + [r["metrics"].get(c) for c in columns] + cells
                    + [ref.get(c) for c in paper_cols])
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([header] + rows)
    atomic_write_text(folder / "summary.csv", buf.getvalue())
    floors = any(name.endswith("_random_init") for r in records for name in r["metrics"])
    marked = any(other_measurement(task, seeds) for seeds in seeds_of.values())
    md = [f"# {task}: results ({preset} preset{f', {variant}' if variant else ''})", ""]
    # results over one checkpoint that describe two models (it was trained again): said before any number
    md += [line for mixed in summary_lines(task, preset, folder) for line in (f"**Mixed models.** {mixed}", "")]
    flagged = any(flags(seeds) for seeds in seeds_of.values())
    counted = [n for n in COUNTS if any(s["metrics"].get(n) for seeds in seeds_of.values() for s in seeds)]
    table = models_table(task, seeds_of, paper)
    floorless = any(f"({NO_FLOOR})" in line for line in table)
    md += ["Headline metrics, mean ± std over seeds"
           + (", the random-init floor in parentheses" if floors or floorless else "")
           + (f" (`{NO_FLOOR}`: the floor scored no feature, flagged after the model's name, or the result "
              f"predates floors or was scored with `random_floor=false`)" if floorless else "") +
           ("; a model scored with other measurement settings than the task's defaults names them" if marked else "")
           + (f"; square brackets after a model's name give the flags its seeds raised ({', '.join(FLAGS)}: "
              f"see Columns)" if flagged else "") + (f", and counts that shrink its means ({', '.join(counted)})"
                                                      if counted else "") + ":", ""]
    md += table
    md += ["", "## Every metric", "", "Generated by `make report` from the JSON files in this folder (`make bench` "
           "rewrites it too). Metric columns are seed 0; "
          "`*_mean`/`*_std` are over every seed in `seeds/` as well (std needs two or more); `paper_*` "
          "columns are the published numbers for the same architecture (far larger models and data).", "",
          "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    md += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    md += ["", "Columns:", ""] + [f"- `{m.name}`: {m.description}" + _direction(m) for m in declared(task)]
    md += [""] + _trained_elsewhere(seeds_of) + _paper_tables(task, by_model, preset)
    atomic_write_text(folder / "summary.md", "\n".join(md) + "\n")
    plot = _plot(task, folder, records, paper)
    return [folder / "summary.csv", folder / "summary.md"] + ([plot] if plot else [])


def _plot(task: str, folder: Path, records: list[dict], paper: dict) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [m for m in ("coverage", "reconstruction", "probe_f1") if any(m in r["metrics"] for r in records)]
    if not metrics:  # a task without board-state scores draws its own figures
        return None
    fig, ax = plt.subplots(figsize=(max(7.0, 3.5 + 1.2 * len(records)), 3.8))
    width = 0.8 / len(metrics)
    for k, metric in enumerate(metrics):
        xs = [i + (k - (len(metrics) - 1) / 2) * width for i in range(len(records))]
        # A model without this metric gets no bar, never a bar at 0.
        ax.bar(xs, [r["metrics"].get(metric, float("nan")) for r in records], width, label=metric)
        floor = [r["metrics"].get(f"{metric}_random_init") for r in records]
        if any(v is not None for v in floor):
            ax.scatter([x for x, v in zip(xs, floor) if v is not None], [v for v in floor if v is not None],
                       marker="_", s=300, color="black", zorder=3, label=None if k else "random-init floor")
        ref = [paper.get(r["model"], {}).get(metric) for r in records]
        if any(v is not None for v in ref):
            ax.scatter([x for x, v in zip(xs, ref) if v is not None], [v for v in ref if v is not None],
                       marker="*", s=80, color="crimson", zorder=3, label=None if k else "MoE-X paper (8 x 512, lichess)")
    ax.set_xticks(range(len(records)), [r["model"] for r in records], rotation=25, ha="right", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("F1-based score, board state")
    ax.set_title(f"{task}: board-state scores of features ({records[0]['preset']} preset)", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    path = folder / "scores.png"
    save_figure(fig, path, dpi=120)
    plt.close(fig)
    return path
