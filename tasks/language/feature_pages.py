"""A static HTML page per model for people browsing its features: explanation, scores, firing
density and the strongest explanation examples with each token shaded by its activation. Rendered
from the per-feature `.jsonl` beside `results/language/<model>.json`, nothing recomputed."""

from __future__ import annotations

import html
import json
from pathlib import Path

from core.results import atomic_write_text

STYLE = """body{font-family:sans-serif;max-width:72em;margin:2em auto;color:#222}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.4em;vertical-align:top}
.ex{font-family:monospace;white-space:pre-wrap;margin:.2em 0}.tok{border-radius:2px}"""


def _example(ex: dict) -> str:
    peak = max(ex["activations"]) or 1.0
    spans = []
    for token, act in zip(ex["tokens"], ex["activations"]):
        alpha = max(0.0, act / peak) if act > 0 else 0.0
        spans.append(f'<span class="tok" style="background:rgba(255,140,0,{alpha:.2f})" title="{act:.3f}">'
                     f"{html.escape(token)}</span>")
    return f'<div class="ex">{"".join(spans)}</div>'


def _score(value) -> str:
    return "-" if value is None else f"{value:.2f}"


def render_page(jsonl: Path) -> Path:
    records = [json.loads(line) for line in jsonl.read_text().splitlines() if line.strip()]
    model = jsonl.stem
    rows = []
    for r in sorted(records, key=lambda r: -(r.get("detection") or 0)):
        examples = "".join(_example(ex) for ex in r.get("top_examples", []))
        rows.append(f"<tr><td>{r['feature']}</td><td>{html.escape(r.get('explanation') or '(no explanation)')}</td>"
                    f"<td>{_score(r.get('detection'))}</td><td>{_score(r.get('fuzzing'))}</td>"
                    f"<td>{r.get('firing_density', 0):.3f}</td><td>{examples}</td></tr>")
    backend = records[0]["backend"] if records else "-"
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(model)} features</title>"
            f"<style>{STYLE}</style></head><body><h1>{html.escape(model)}: {len(records)} scored features</h1>"
            f"<p>Backend <b>{html.escape(backend)}</b>. Detection and fuzzing are balanced accuracies on held-out "
            f"examples; firing density is the share of tokens the feature fires on. Shading: activation as a "
            f"share of the example's maximum (hover for the value).</p><table><tr><th>feature</th>"
            f"<th>explanation</th><th>detection</th><th>fuzzing</th><th>density</th><th>strongest examples</th>"
            f"</tr>{''.join(rows)}</table></body></html>\n")
    path = jsonl.with_suffix(".html")
    atomic_write_text(path, page)
    return path


def render_pages(folder: Path) -> list[Path]:
    return [render_page(p) for p in sorted(folder.glob("*.jsonl"))]
