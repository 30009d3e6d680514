"""The published superposition claims (docs/superposition.md section 7, Chaudhari et al.) beside our numbers,
each judged from them, plus the benchmark's own question: does MoE-X's router lower superposition
further than a learned router at equal network sparsity? The report calls `render(stats, preset)`."""

from __future__ import annotations

import re

# The MoE counterparts the claims are about; `moe-relu` has MoE-X's hidden form with a learned router.
MOE_MODELS = ("moe", "switch", "moe-relu", "moex")
# Features per dimension within this relative difference are called about equal: each configuration
# is a mean over the sweep's densities and a few seeds, with no spread computed per configuration.
ABOUT_EQUAL = 0.05
# Below this share of chosen experts' units firing, the experts a router picks are called silent.
SILENT = 0.05


def _get(stats: dict, model: str, metric: str) -> float | None:
    return stats.get(model, {}).get("mean", {}).get(metric)


def _in_order(configs) -> list[str]:
    """Configuration labels (e4m5k1, ...) by their numbers, not as text."""
    return sorted(configs, key=lambda c: [int(x) for x in re.findall(r"\d+", c)])


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def render(stats: dict, preset: str | None = None) -> list[str]:
    dense_fpd, dense_loss = _get(stats, "dense", "features_per_dim"), _get(stats, "dense", "loss")
    moes = [m for m in MOE_MODELS if _get(stats, m, "features_per_dim") is not None]
    if dense_fpd is None or not moes:
        return []
    dense_jump = _get(stats, "dense", "features_per_dim_max_jump")
    lines = ["## Beside the published claims", "",
             "Chaudhari et al.'s claims (docs/superposition.md section 7), judged from the sweep means above "
             "(every density, configuration and seed of each model).", "",
             "| model | features/dim (dense over it) | fewer per dimension than dense (less superposition) | largest "
             f"change between neighbouring densities (dense {dense_jump:.2f}) | loss (dense {dense_loss:.3f}) | "
             "dense loss slightly lower |",
             "|---|---|---|---|---|---|"]
    gaps = []
    for m in moes:
        fpd, loss, jump = (_get(stats, m, k) for k in ("features_per_dim", "loss", "features_per_dim_max_jump"))
        gap = loss - dense_loss
        gaps.append(gap)
        lines.append(f"| {m} | {fpd:.3f} ({dense_fpd / fpd:.2f}x) | {_yes(fpd < dense_fpd)} "
                     f"| {jump:.2f} ({'smaller' if jump < dense_jump else 'not smaller'}) "
                     f"| {loss:.3f} | {_yes(gap > 0)}, by {gap:.3f} |")
    lines += ["", f"The source puts the losses at \"about 0.03-0.08\" without saying whether that is their level "
                  f"or the dense model's lead, so neither reading is judged: here the dense loss is "
                  f"{dense_loss:.3f} and its lead {min(gaps):.3f} to {max(gaps):.3f}."]
    lines += _specialisation(stats) + _router_question(stats)
    mono = {m: _get(stats, m, "monosemantic_fraction") for m in ["dense", *moes]}
    inter = [v for v in (_get(stats, m, "mean_interference") for m in ["dense", *moes]) if v is not None]
    if inter and all(v == 0 for v in mono.values() if v is not None):
        lines += ["", f"No model has a monosemantic feature in the sweep (interference norm < 0.2), so the count "
                      f"cannot separate the models here: mean interference of represented features is "
                      f"{min(inter):.2f}-{max(inter):.2f}. With uniform importance any rotation of a solution "
                      f"loses the same, so nothing favours one feature per direction; `importance_decay` below 1 "
                      f"breaks that symmetry."]
    else:
        lines += _monosemantic(stats, ["dense", *moes])
    return lines + [""]


def _monosemantic(stats: dict, models: list[str]) -> list[str]:
    """Share of the features that are monosemantic in some expert, per model and configuration."""
    configs = _in_order({k[len("monosemantic_fraction_"):] for m in models for k in stats[m]["mean"]
                         if k.startswith("monosemantic_fraction_e")})
    rows = []
    for m in models:
        cells = [_get(stats, m, f"monosemantic_fraction_{c}") for c in configs]
        rows.append(f"| {m} | {_get(stats, m, 'monosemantic_fraction'):.3f} | "
                    + " | ".join("-" if v is None else f"{v:.3f}" for v in cells) + " |")
    return ["", "Monosemantic features (interference norm < 0.2, norm >= 0.1): share of the features, sweep mean "
                "over densities and seeds; a dense model is its own single configuration.", "",
            "| model | all configurations | " + " | ".join(configs) + " |",
            "|---|---|" + "---|" * len(configs)] + rows


def _specialisation(stats: dict) -> list[str]:
    """Their Table 1: usage of an expert when its monosemantic features are present, by gate init. Their
    67-100% is the range of the mean usage of experts grouped by how many monosemantic features they hold,
    so the judged column groups the per-expert rows (every seed's) the same way."""
    rows = []
    for m in MOE_MODELS:
        for init in ("khot", "xavier", "sparsity_router"):
            usage = _get(stats, m, f"specialisation_usage_{init}")
            base = _get(stats, m, f"specialisation_baseline_{init}")
            if usage is None or base is None:
                continue
            groups = _usage_by_monosemantic_count(stats[m], init)
            spread = (f"{min(groups.values()):.0%}-{max(groups.values()):.0%} ({len(groups)} "
                      f"group{'s' if len(groups) != 1 else ''})" if groups else "-")
            claim = "-"
            if init == "khot":  # the claim is about k-hot initialisation only
                claim = "67-100%: " + (_yes(min(groups.values()) >= 0.67) if groups
                                       else "not judged (no per-expert rows)")
            rows.append(f"| {m} | {init} | {base:.0%} | {usage:.0%} | {spread} | {claim} |")
    if not rows:
        return []
    return ["", "Expert specialisation (their Table 1): how often an expert is chosen when its monosemantic "
                "features are set, against how often otherwise; all experts pooled, and the lowest and highest "
                "mean over experts grouped by how many monosemantic features they hold (as the source reports "
                "it, and judges it).", "",
            "| model | gate init | usage otherwise | usage with its features | by monosemantic features held "
            "| claim (k-hot) |",
            "|---|---|---|---|---|---|"] + rows


def _usage_by_monosemantic_count(stat: dict, init: str) -> dict[int, float]:
    """Mean clamped usage per number of monosemantic features an expert holds, over every seed's experts."""
    by_count: dict[int, list[float]] = {}
    for details in stat.get("details") or []:
        for row in (details or {}).get("specialisation") or []:
            if row.get("gate_init") == init:
                by_count.setdefault(row["monosemantic_features"], []).append(row["usage_clamped"])
    return {count: sum(v) / len(v) for count, v in sorted(by_count.items())}


def _router_question(stats: dict) -> list[str]:
    """MoE-X's router against a learned one with the same ReLU hidden form, configuration by configuration."""
    if _get(stats, "moex", "features_per_dim") is None or _get(stats, "moe-relu", "features_per_dim") is None:
        return []
    configs = _in_order(k[len("features_per_dim_"):] for k in stats["moex"]["mean"] if k.startswith("features_per_dim_e"))
    # Older results lack the per-configuration columns: each only when every row has it.
    extra = [(key, title) for key, title in (("monosemantic_fraction", "monosemantic share"),
                                             ("chosen_units_on", "units firing in chosen experts"))
             if all(_get(stats, m, f"{key}_{c}") is not None for m in ("moe-relu", "moex") for c in configs)]
    rows, silent = [], []
    for c in configs:
        x, r = _get(stats, "moex", f"features_per_dim_{c}"), _get(stats, "moe-relu", f"features_per_dim_{c}")
        lx, lr = _get(stats, "moex", f"loss_{c}"), _get(stats, "moe-relu", f"loss_{c}")
        if None in (x, r, lx, lr):
            continue
        verdict = "about equal" if abs(x - r) <= ABOUT_EQUAL * r else "lower" if x < r else "higher"
        cells = "".join(f" {_get(stats, 'moe-relu', f'{key}_{c}'):.3f} / {_get(stats, 'moex', f'{key}_{c}'):.3f} |"
                        for key, _ in extra)
        rows.append(f"| {c} | {r:.3f} | {x:.3f} | {verdict} | {lr:.3f} | {lx:.3f} |{cells}")
        on = _get(stats, "moex", f"chosen_units_on_{c}")
        if on is not None and on < SILENT:
            silent.append(f"{c} ({on:.1%} of their units firing)")
    seeds = min(stats[m]["n_seeds"] for m in ("moe-relu", "moex"))
    lines = ["", "Does MoE-X's sparsity-aware router lower superposition further than a learned router at equal "
                 "network sparsity? `moe-relu` (learned router) against `moex` (sparsity router), the same ReLU "
                 f"experts; configurations are E experts of m units, top-k. Within 5% is called about equal ({seeds} "
                 f"seed{'s' if seeds != 1 else ''}, no spread per configuration).", "",
             "| configuration | features/dim, learned router | features/dim, MoE-X router | MoE-X | loss, learned "
             "| loss, MoE-X |" + "".join(f" {title}, learned / MoE-X |" for _, title in extra),
             "|---|---|---|---|---|---|" + "---|" * len(extra)] + rows
    if silent:
        lines += ["", f"MoE-X's router picks silent experts at {', '.join(silent)}: "
                      f"it sends each input to the experts expected to fire least, and an expert of few units "
                      f"can be expected not to fire at all. A silent expert outputs its bias and its weights "
                      f"get no reconstruction gradient, so its features per dimension there measures experts that "
                      f"never learned, not less superposition."]
    return lines
