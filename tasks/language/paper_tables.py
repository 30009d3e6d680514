"""Our language numbers laid out as the MoE-X paper's Table 2 (perplexity), its numbers beside, plus
the auto-interp comparison the paper claims (MoE-X matches or beats SAE detection; both beat dense
neurons), stated from our numbers. The report calls `render(stats)` as for chess."""

from __future__ import annotations

from tasks.language.paper_numbers import DATASETS, PAPER_TABLE_2


def _mean(stats: dict, model: str, metric: str) -> float | None:
    return stats.get(model, {}).get("mean", {}).get(metric)


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3f}" if value < 10 else f"{value:.2f}"


def render(stats: dict) -> list[str]:
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
    detection = {m: _mean(stats, m, "detection") for m in ("dense", "dense+sae", "moex")}
    if all(v is not None for v in detection.values()):
        holds = detection["moex"] >= detection["dense+sae"] and min(detection["moex"], detection["dense+sae"]) > \
            detection["dense"]
        lines += ["", f"The paper's claim, MoE-X detection >= SAE detection > dense neurons, "
                      f"{'holds' if holds else 'does not hold'} here: moex {detection['moex']:.3f}, dense+sae "
                      f"{detection['dense+sae']:.3f}, dense {detection['dense']:.3f} (backend and skipped "
                      f"features in each result's details)."]
    return lines + [""]
