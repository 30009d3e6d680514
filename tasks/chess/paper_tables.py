"""Our chess numbers laid out as the MoE-X paper's Tables 1, 3 and 4, with its numbers beside them.

The report calls `render(stats, preset)` with, per model, the seed-0 metrics, the mean/std over seeds and
the flags its seeds raised, worded (`bench/report._seed_stats`); a table is drawn with whatever of its
models have results in the folder. Whether our numbers keep the paper's ordering is stated from the
numbers, as a finding: nothing here is tuned toward it.
"""

from __future__ import annotations

import statistics

from core.significance import TABLE_HEADER, Difference, difference_table, differences, untested_pairs
from tasks.chess.paper_numbers import KARVONEN, PAPER_TABLE_1, PAPER_TABLE_4, comparable

# Table 1 plus our SAE, whose reference is Karvonen et al.'s best SAE (no chess SAE in the MoE-X paper).
TABLE_1 = ["dense", "dense-relu", "switch", "moex", "dense+sae"]
TABLE_4 = ["dense", "dense-continued", "moex", "moex-upcycled"]
# Table 3: rows are routers, columns are expert activations; (GELU, learned) is the Switch row.
TABLE_3 = {("learned top-k", "GELU"): "switch", ("learned top-k", "ReLU"): "switch-relu",
           ("sparsity", "GELU"): "moex-gelu", ("sparsity", "ReLU"): "moex"}
# The paper's claim (Table 1): MoE-X > Switch > dense in reconstruction.
CLAIMED_ORDER = ["moex", "switch", "dense"]
# The differences the paper's claims rest on, each tested over seeds.
CLAIMED_PAIRS = [("moex", "switch"), ("switch", "dense"), ("moex", "dense"), ("moex", "moe"), ("moex", "dense+sae")]
# Not the paper's claims: MoE-X's units against the features other methods find in (or build into) the
# dense model, and whether top-k sparsity alone, without experts, moves dense neurons.
NEIGHBOUR_PAIRS = [("moex", "dense+transcoder"), ("moex", "dense+attn-sae"), ("moex", "dense+snmf"),
                   ("moex", "dense-topk"), ("dense-topk", "dense"),
                   *(("moex", f"dense+sae:{a}") for a in ("standard", "batchtopk", "jumprelu", "gated")),
                   ("moex-balanced", "moex"), ("moex-centred", "moex")]
# What the table's heading says it holds, for the neighbour pairs that are not against dense dictionaries.
NEIGHBOUR_CAPTIONS = {("dense-topk", "dense"): "top-k sparsity alone against dense neurons",
                      ("moex-balanced", "moex"): "MoE-X with a load-balancing loss against MoE-X",
                      ("moex-centred", "moex"): "MoE-X with a centred router input against MoE-X"}


def _cell(stat: dict | None, metric: str) -> str:
    """`0.070` for one seed, `0.070 ± 0.004 (3)` as mean ± std over seeds."""
    if stat is None or metric not in stat["mean"]:
        return "-"
    n, mean, std = stat["n_seeds"], stat["mean"][metric], stat["std"].get(metric)
    return f"{mean:.3f}" if n < 2 or std is None else f"{mean:.3f} ± {std:.3f} ({n})"


def _paper(table: dict, model: str, metric: str) -> str:
    value = table.get(model, {}).get(metric)
    return "-" if value is None else f"{value:.3f}"


def _model_table(title: str, models: list[str], paper: dict, stats: dict, metrics: list[str]) -> list[str]:
    present = [m for m in models if m in stats]
    if not present:
        return []
    lines = [f"### {title}", "", "| model | " + " | ".join(f"{m} (ours) | {m} (paper)" for m in metrics) + " |",
             "|---|" + "---|---|" * len(metrics)]
    for m in present:
        lines.append(f"| {m} | " + " | ".join(f"{_cell(stats[m], c)} | {_paper(paper, m, c)}" for c in metrics) + " |")
    return lines + [""]


def _grid(stats: dict) -> list[str]:
    if not any(m in stats for m in TABLE_3.values()):
        return []
    lines = ["### Table 3: expert activation x router (coverage / reconstruction; ours, then paper)", "",
             "| router | GELU experts | ReLU experts |", "|---|---|---|"]
    for router in ("learned top-k", "sparsity"):
        cells = []
        for act in ("GELU", "ReLU"):
            m = TABLE_3[(router, act)]
            cells.append(f"`{m}` {_cell(stats.get(m), 'coverage')} / {_cell(stats.get(m), 'reconstruction')} "
                         f"(paper {_paper(PAPER_TABLE_1, m, 'coverage')} / {_paper(PAPER_TABLE_1, m, 'reconstruction')})")
        lines.append(f"| {router} | " + " | ".join(cells) + " |")
    return lines + [""]


def ordering_finding(stats: dict, metric: str = "reconstruction") -> str | None:
    """Whether the paper's MoE-X > Switch > dense holds in our seed means, said plainly."""
    if not all(m in stats and metric in stats[m]["mean"] for m in CLAIMED_ORDER):
        return None
    values = {m: stats[m]["mean"][metric] for m in CLAIMED_ORDER}
    ours = sorted(CLAIMED_ORDER, key=lambda m: -values[m])
    shown = " > ".join(f"{m} {values[m]:.3f}" for m in ours)
    verdict = "holds" if ours == CLAIMED_ORDER else "does not hold"
    spread = [stats[m]["std"].get(metric) for m in CLAIMED_ORDER]
    caveat = ("" if all(s is not None for s in spread)
              else " (some models have one seed: no spread to judge the gaps against)")
    return (f"The paper's ordering in {metric}, MoE-X > Switch > dense, {verdict} here: {shown}"
            f"{caveat}.")


def render(stats: dict, preset: str | None = None) -> list[str]:
    """Markdown lines for the summary; empty when none of the paper's models has results here. At a
    move-format preset the paper's validation loss (per character) is left out: ours is per move."""
    paper_1 = {**(comparable(preset) if preset else PAPER_TABLE_1), "dense+sae": KARVONEN["best SAE"]}
    body = (_model_table("Table 1: activated parameters equal (dense+sae: Karvonen et al.'s best SAE)", TABLE_1,
                         paper_1, stats, ["val_loss", "coverage", "reconstruction"])
            + _grid(stats)
            + _model_table("Table 4: upcycling (paper's moex row: MoE-X from scratch)", TABLE_4, PAPER_TABLE_4,
                           stats, ["coverage", "reconstruction"]))
    if not body:
        return []
    finding = ordering_finding(stats)
    return (["## Beside the MoE-X paper", "",
             "The paper's models are 8 x 512 trained on 16M lichess games; ours are the preset's size on "
             "engine games, so its numbers are a reference point, not a target. Ours: mean ± std (seeds) "
             "where more than one seed ran.", ""]
            + body + ([finding, ""] if finding else []) + gains_table(stats) + _differences(stats))


def above_floor(values: dict[str, list[float]], metric: str) -> list[float] | None:
    """Each seed's metric minus its own random-init floor (the same architecture untrained, scored the
    same way); None when the seeds lack the floor."""
    floor = values.get(f"{metric}_random_init")
    return None if metric not in values or floor is None else [v - f for v, f in zip(values[metric], floor)]


def _gain_cell(gains: list[float] | None) -> str:
    """`+0.063 ± 0.007 (3)` over seeds (sample std), `+0.036` for one seed, `-` without a floor."""
    if not gains:
        return "-"
    mean = statistics.mean(gains)
    return f"{mean:+.3f}" if len(gains) < 2 else f"{mean:+.3f} ± {statistics.stdev(gains):.3f} ({len(gains)})"


def gains_table(stats: dict) -> list[str]:
    """Every model's coverage and reconstruction above its own random-init floor, mean ± std over
    seeds, the best coverage gain first: the quantity the comparisons below test."""
    rows = []
    for model, stat in stats.items():
        values = stat.get("values", {})
        coverage, reconstruction = above_floor(values, "coverage"), above_floor(values, "reconstruction")
        if coverage:
            # the flags change what a gain means (a mostly dead floor inflates it; a mostly dead model or a
            # collapsed router deflates it), so they stand beside the name as in the headline
            rows.append((-statistics.mean(coverage), model + stat.get("flags", ""),
                         _gain_cell(coverage), _gain_cell(reconstruction)))
    if not rows:
        return []
    return (["### Above the random-init floor", "",
             "Each seed's score minus its own floor (the same architecture untrained, or the same dictionary "
             "fitted on it), then the mean ± std over seeds (their number in brackets); the largest coverage gain first.", "",
             "| model | coverage above floor | reconstruction above floor |", "|---|---|---|"]
            + [f"| {model} | {cov} | {rec} |" for _, model, cov, rec in sorted(rows)] + [""])


def _difference_rows(stats: dict, pairs: list[tuple[str, str]]) -> list[Difference]:
    rows = []
    for metric in ("coverage", "reconstruction"):
        values = {m: st["values"][metric] for m, st in stats.items() if metric in st.get("values", {})}
        rows += differences(values, pairs, metric)
        gains = {m: g for m, st in stats.items() if (g := above_floor(st.get("values", {}), metric)) is not None}
        rows += differences(gains, pairs, f"{metric} above floor")
        rows += untested_pairs(pairs, values, set(gains), f"{metric} above floor", "no random-init floor")
    return rows


def _differences(stats: dict) -> list[str]:
    claimed, neighbours = _difference_rows(stats, CLAIMED_PAIRS), _difference_rows(stats, NEIGHBOUR_PAIRS)
    lines = []
    if claimed or neighbours:
        lines += ["### Differences over seeds", "",
                  "Welch's t-test (unequal variances, two-sided) on the per-seed values, unpaired: two models' "
                  "seeds are independent draws (seeds counted in the table); with two or three seeds a side only "
                  "large, consistent gaps reach p < 0.05. \"Above floor\": each seed's score minus its own "
                  "random-init floor, since the floors differ between architectures (more units give more chance "
                  "matches)." + (" The p column is each test alone; \"p, Holm\" adjusts it for the number of "
                                 "tests in its table (Holm's step-down), which is the one to read before calling any "
                                 "single gap real." if any(r.test for r in claimed + neighbours) else ""), ""]
    if claimed:
        lines += ["The paper's claims:", ""] + TABLE_HEADER + difference_table(claimed) + [""]
    if neighbours:
        captions = [caption for (a, b), caption in NEIGHBOUR_CAPTIONS.items()
                    if any((r.first, r.second) == (a, b) for r in neighbours)]
        lines += ["MoE-X's units against the neighbouring methods over the dense model"
                  + "".join(f", {caption}" for caption in captions) + ":", ""]
        lines += TABLE_HEADER + difference_table(neighbours) + [""]
    return lines
