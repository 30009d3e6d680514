"""One feature through a backend: explain, then detection and fuzzing on held-back examples
(docs/language.md section 4.5, delphi's protocol).

Detection shows the 50 activating and 50 non-activating test windows as plain text, shuffled, in
batches of 5. Fuzzing shows the same windows with tokens highlighted: in an activating window the
tokens at or above 0.3 x that window's maximum (delphi's threshold); in a non-activating window as
many random tokens as the activating windows highlight on average (rounded up). Both are scored by
balanced accuracy (tasks/language/autointerp/scoring.py).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from tasks.language.autointerp.backend import Backend, Example
from tasks.language.autointerp.highlight import active_positions
from tasks.language.autointerp.scoring import accuracy_by_decile, balanced_accuracy

BATCH = 5
TOP_SHOWN = 5  # explanation examples kept in the per-feature record, for people browsing it


@dataclass(frozen=True)
class FeatureExamples:
    feature: int
    explain: list[Example]
    test: list[Example]       # activating, each with its decile
    negative: list[Example]   # verified non-activating


def _ask(backend: Backend, kind: str, explanation: str, examples: list[Example]) -> list[bool | None]:
    """Answers for `examples` in batches of 5; all batches at once where the backend can take them
    concurrently (`detect_batches` / `fuzz_batches`), else one by one."""
    # The scorer gets the tokens and any highlights, never the activations or deciles behind them.
    shown = [Example(ex.tokens, np.zeros(0, dtype=np.float32), None, ex.highlighted) for ex in examples]
    batches = [shown[start:start + BATCH] for start in range(0, len(shown), BATCH)]
    many = getattr(backend, f"{kind}_batches", None)
    replies = many(explanation, batches) if many else [getattr(backend, kind)(explanation, b) for b in batches]
    answers: list[bool | None] = []
    for batch, got in zip(batches, replies):
        answers += got if len(got) == len(batch) else [None] * len(batch)  # a wrong-length reply parses as nothing
    return answers


def _fuzz_examples(fx: FeatureExamples, rng: np.random.Generator) -> list[Example]:
    marked = [dataclasses.replace(ex, highlighted=active_positions(ex)) for ex in fx.test]
    n_random = math.ceil(np.mean([len(ex.highlighted) for ex in marked])) if marked else 1
    for ex in fx.negative:
        k = min(max(1, n_random), len(ex.tokens))
        marked.append(dataclasses.replace(ex, highlighted=tuple(sorted(int(i) for i in
                                                                       rng.choice(len(ex.tokens), k, replace=False)))))
    return marked


def score_feature(backend: Backend, fx: FeatureExamples, rng: np.random.Generator) -> dict:
    """The per-feature record: explanation, scores, per-decile accuracies, parse failures, answers."""
    record = {"feature": fx.feature, "backend": backend.name, "top_examples": _top(fx.explain)}
    explanation = backend.explain(fx.explain)
    record["explanation"] = explanation
    if explanation is None:
        return {**record, "explanation_failed": True, "detection": None, "fuzzing": None}
    labels = [True] * len(fx.test) + [False] * len(fx.negative)
    deciles = [ex.decile for ex in fx.test] + [None] * len(fx.negative)
    order = rng.permutation(len(labels))
    for name, examples, kind in (("detection", fx.test + fx.negative, "detect"),
                                 ("fuzzing", _fuzz_examples(fx, rng), "fuzz")):
        shown = [examples[i] for i in order]
        answers = [None] * len(labels)
        for i, a in zip(order, _ask(backend, kind, explanation, shown)):
            answers[i] = a
        record[name] = balanced_accuracy(answers, labels)
        record[f"{name}_by_decile"] = accuracy_by_decile(answers, labels, deciles)
        record[f"{name}_parse_failures"] = sum(a is None for a in answers)
        record[f"{name}_answers"] = [None if a is None else int(a) for a in answers]
    record["labels"] = [int(y) for y in labels]
    record["test_deciles"] = deciles
    return record


def _top(examples: list[Example]) -> list[dict]:
    strongest = sorted(examples, key=lambda ex: -ex.max_activation)[:TOP_SHOWN]
    return [{"tokens": list(ex.tokens), "activations": [round(float(a), 4) for a in ex.activations]}
            for ex in strongest]
