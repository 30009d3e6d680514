"""Our language numbers laid out as the MoE-X paper's Table 2 (perplexity), its numbers beside, plus
the auto-interp comparison the paper claims (MoE-X matches or beats SAE detection; both beat dense
neurons), stated from our numbers. The report calls `render(stats, preset)` as for chess."""

from __future__ import annotations

from tasks.language.paper_numbers import DATASETS, PAPER_TABLE_2


def _mean(stats: dict, model: str, metric: str) -> float | None:
    return stats.get(model, {}).get("mean", {}).get(metric)


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3f}" if value < 10 else f"{value:.2f}"


def render(stats: dict, preset: str | None = None) -> list[str]:
    rows = [m for m in ("dense", "dense+sae", "switch", "moex") if m in stats]
    if not rows:
        return []
    lines = ["## Beside the MoE-X paper", "",
             "Table 2 counterpart. Ours: perplexity on the embedded corpus's held-out split (a model's own "
             "units spliced back change nothing; an SAE's splice is `perplexity_splice`). The paper's models "
             "are GPT-2 sized on FineWeb: compare orderings, not values.", "",
             "| model | perplexity (ours) | with its features spliced in (ours) | paper: "
             + " / ".join(DATASETS) + " |", "|---|---|---|---|"]
    for m in rows:
        paper = PAPER_TABLE_2.get(m)
        paper_text = f"{paper['source']}: " + " / ".join(f"{v:.2f}" for v in paper["perplexity"]) if paper else "-"
        lines.append(f"| {m} | {_fmt(_mean(stats, m, 'perplexity'))} | {_fmt(_mean(stats, m, 'perplexity_splice'))} "
                     f"| {paper_text} |")
    lines += _detection_claim(stats)
    return lines + [""]


def _scored(stats: dict, model: str) -> str:
    """How many sampled features were scored: a unit that rarely fires is skipped (too few activating
    windows), so a model with many such units is judged on its more active ones."""
    n, sampled = _mean(stats, model, "detection_n_features"), _mean(stats, model, "autointerp_features_sampled")
    return "" if None in (n, sampled) else f" ({n:.0f} of {sampled:.0f} scored)"


def _detection_claim(stats: dict) -> list[str]:
    """The paper's claim in two parts, each judged with the bootstrap 95% CIs: MoE-X against the SAE
    (above, overlapping or below: "matches or beats" holds unless it is below), and both against
    dense neurons (their CIs above dense's)."""
    models = ("moex", "dense+sae", "dense")
    score = {m: [_mean(stats, m, f"detection{s}") for s in ("", "_ci_low", "_ci_high")] for m in models}
    if any(v is None for m in models for v in score[m]):
        return []
    (moex, moex_low, moex_high), (sae, sae_low, sae_high), (dense, _, dense_high) = (score[m] for m in models)
    versus_sae = ("CI above the SAE's (beats it)" if moex_low > sae_high else
                  "CI below the SAE's (does not match it)" if moex_high < sae_low else
                  "CIs overlap (not distinguishable at this size)")
    beat = moex_low > dense_high and sae_low > dense_high
    described = ", ".join(f"{m} {v:.3f} [{low:.3f}, {high:.3f}]{_scored(stats, m)}"
                          for m, (v, low, high) in score.items())
    seeds = max(stats[m].get("n_seeds", 1) for m in models)
    averaged = f" CIs are means over {seeds} seeds' CIs, not a CI of the mean." if seeds > 1 else ""
    return ["", f"The paper's claim, on detection (95% bootstrap CIs over features in brackets): {described}. "
                f"MoE-X against the SAE: {versus_sae}; both above dense neurons: {'yes' if beat else 'no'} (backend and "
                f"skipped features in each result's details).{averaged}"]
