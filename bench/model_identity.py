"""Which weights a result was scored on, and a check that results naming one checkpoint agree.

A seed's checkpoint other than seed 0's is not committed. When it is lost with a machine and trained
again, the same recipe and seed give a different model (other float rounding over hours of training).
Results scored before and after then name the same checkpoint path but describe two models, and a
comparison between them (a model against its own SAE, one block against another) would silently mix
them. Every result records the sha256 of the parameters it was scored on; `mixed_models` finds the
checkpoint paths whose results disagree, for the summary and the run to say so."""

from __future__ import annotations

import json

from core.results import NOT_RESULTS, task_dir


def scored_weights(record: dict) -> str | None:
    """The parameter digest a result was scored on: its own (every run since this field), else the
    one its dictionary recorded of the model under it (SAEs, transcoders, semi-NMF); None for older
    results that recorded neither."""
    provenance = record.get("provenance") or {}
    return provenance.get("model_weights_sha256") or (provenance.get("features_from") or {}).get("model_weights_sha256")


def mixed_models(task: str, preset: str) -> list[str]:
    """One line per checkpoint whose results under the task's results folder (every variant and seed
    of `preset`) were scored on different weights, naming each result, its digest and when it ran."""
    root = task_dir(task, preset)
    by_checkpoint: dict[str, dict[str, list[tuple[str, str]]]] = {}
    for path in sorted(root.rglob("*.json")):
        if path.name.startswith(NOT_RESULTS):
            continue
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # not ours to judge here: loading it for a summary reports what is wrong with it
        if not isinstance(record, dict) or record.get("preset") != preset:
            continue
        checkpoint, digest = (record.get("provenance") or {}).get("checkpoint"), scored_weights(record)
        if checkpoint and digest:
            created = str(record["provenance"].get("created", "?"))[:16]
            by_checkpoint.setdefault(checkpoint, {}).setdefault(digest, []).append((created, str(path.relative_to(root))))
    lines = []
    for checkpoint, digests in sorted(by_checkpoint.items()):
        if len(digests) > 1:
            # each model's results in the order they were scored, the model scored most recently last
            groups = sorted((sorted(runs), digest) for digest, runs in digests.items())
            named = "; ".join(f"{', '.join(f'{file} ({created})' for created, file in runs)} on {digest[:12]}"
                              for runs, digest in sorted(groups, key=lambda g: g[0][-1]))
            lines.append(f"{checkpoint}: its results were scored on different weights (the checkpoint was trained "
                         f"again): {named}. Score the earlier ones again with the same model, seed and settings "
                         f"before comparing them.")
    return lines
