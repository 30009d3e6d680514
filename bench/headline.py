"""The compact tables a reader sees first: one run's headline metrics (printed by `make bench`), and
every model's (printed by `make report`, and the top of each summary.md). Built from the task's metric
declarations; every score keeps its random-init floor, its ceiling and the paper's number beside it."""

from __future__ import annotations

import statistics

from core.metrics import declared


def _num(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def _markdown(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]


def run_table(task: str, metrics: dict, paper: dict) -> list[str]:
    """One result: a row per headline metric it has."""
    rows = []
    for m in declared(task):
        if m.headline and m.name in metrics:
            rows.append([m.name, _num(metrics[m.name]), _num(metrics.get(m.floor)) if m.floor else "",
                         f"{_num(metrics.get(m.ceiling))} ({m.ceiling})" if m.ceiling and m.ceiling in metrics else "",
                         _num(paper.get(m.name))])
    return _markdown(["metric", "value", "random-init floor", "ceiling", "paper"], rows)


NO_FLOOR = "no floor"


def _cell(seeds: list[dict], name: str, floor: str | None) -> str:
    values = [s["metrics"][name] for s in seeds if name in s["metrics"]]
    if not values:
        return "-"
    text = f"{statistics.fmean(values):.3f}"
    if len(values) > 1:
        text += f" ± {statistics.stdev(values):.3f}"
    floors = [s["metrics"][floor] for s in seeds if floor and floor in s["metrics"]]
    if floor and not floors:  # a score the task has a floor for, scored without one: said, not left out
        return text + f" ({NO_FLOOR})"
    return text + (f" ({statistics.fmean(floors):.3f})" if floors else "")


def models_table(task: str, seeds_of: dict[str, list[dict]], paper: dict) -> list[str]:
    """Every model: mean ± std over its seeds of each headline metric (at most five), the mean
    random-init floor in parentheses, flags in square brackets, and the paper's numbers where it has any."""
    heads = [m for m in declared(task) if m.headline][:5]
    paper_cols = [m.name for m in heads if any(m.name in v for v in paper.values())]
    rows = []
    for model, seeds in seeds_of.items():
        ref = paper.get(model, {})
        rows.append([model + other_measurement(task, seeds) + flags(seeds), str(len(seeds))]
                    + [_cell(seeds, m.name, m.floor) for m in heads]
                    + (([" / ".join(_num(ref.get(c)) for c in paper_cols)]) if paper_cols else []))
    header = ["model", "seeds"] + [m.name for m in heads] + ([f"paper {' / '.join(paper_cols)}"] if paper_cols else [])
    return _markdown(header, rows)


# Result flags (1.0 when raised) that make a row's numbers mean something else than they seem: said
# beside the model's name, since the headline has no column for them.
FLAGS = {"mostly_dead": "mostly dead", "router_collapsed": "router collapsed", "floor_mostly_dead": "floor mostly dead"}
# Counts (summed over seeds, out of another count) that shrink what a headline mean averages without
# showing in it: a feature whose explanation did not parse is dropped from detection and fuzzing, and
# no parse failure rate counts it.
COUNTS = {"autointerp_explanation_failures": ("without a parseable explanation", "autointerp_features_sampled")}
# A floor whose mean is over fewer than half the features sampled (an untrained network's features can
# mostly be unscorable): the headline shows its mean in parentheses, this says how thin it is.
THIN_FLOORS = {"detection_n_features_random_init": "autointerp_features_sampled"}


def flags(seeds: list[dict]) -> str:
    """` [mostly dead]`, or ` [router collapsed: 2 of 3 seeds]`: the flags any seed of a model raised,
    counted over the seeds that measured them (a seed scored before a flag existed did not); then the
    COUNTS that are not zero (` [7 of 20 sampled features without a parseable explanation]`)."""
    said = []
    for name, words in FLAGS.items():
        measured = [s for s in seeds if name in s["metrics"]]
        raised = sum(s["metrics"][name] >= 0.5 for s in measured)
        if raised:
            said.append(words if raised == len(seeds) else f"{words}: {raised} of {len(measured)}"
                        + (" measured seeds" if len(measured) < len(seeds) else " seeds"))
    for name, (words, out_of) in COUNTS.items():
        counted = [s["metrics"] for s in seeds if name in s["metrics"]]
        if sum(m[name] for m in counted):
            said.append(f"{sum(m[name] for m in counted):.0f} of {sum(m.get(out_of, 0) for m in counted):.0f} "
                        f"sampled features {words}")
    for name, out_of in THIN_FLOORS.items():
        counted = [s["metrics"] for s in seeds if name in s["metrics"]]
        scored, sampled = sum(m[name] for m in counted), sum(m.get(out_of, 0) for m in counted)
        if counted and scored < sampled / 2:
            said.append(f"floor over {scored:.0f} of {sampled:.0f} sampled features" if scored
                        else f"floor scored none of {sampled:.0f} sampled features")
    return f" [{'; '.join(said)}]" if said else ""


def other_measurement(task: str, seeds: list[dict]) -> str:
    """` (negatives=weakest)`: the measurement settings (the task config's MEASUREMENT fields) where a
    model was scored otherwise than the task's default, so its row is not read as the same protocol."""
    from bench import registry

    if task not in registry.TASKS:  # results of a task this version does not define have no defaults here
        return ""
    config = registry.task(task).Config
    default = config()
    changed = sorted({f"{name}={s['config'][name]}" for s in seeds for name in getattr(config, "MEASUREMENT", ())
                      if name in s.get("config", {}) and s["config"][name] != getattr(default, name)})
    return f" ({', '.join(changed)})" if changed else ""
