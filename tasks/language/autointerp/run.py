"""Auto-interp of one model's features: the same text, sampling rules and backend for every model.

A seeded random subset of the features is scored (the MoE-X paper scored 1000 random features);
features with too few activating windows are skipped and counted, not dropped silently. The summary
is the mean detection and fuzzing balanced accuracy over scored features with bootstrap 95%
intervals, per-decile accuracies, parse-failure rates and the firing density beside them (density
confounds these scores: a feature that fires everywhere is easy to "detect").
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import BenchError
from core.progress import progress
from tasks.language.autointerp.activation_cache import FeatureFn, window_activations, window_maxima
from tasks.language.autointerp.backend import Backend, Example
from tasks.language.autointerp.protocol import FeatureExamples, score_feature
from tasks.language.autointerp.sampling import N_DECILES, SamplingRules, sample_feature
from tasks.language.autointerp.scoring import bootstrap_mean

WINDOW = 32


@dataclass(frozen=True)
class AutoInterpResult:
    metrics: dict
    details: dict
    records: list[dict]


COLUMN_BLOCK = 256  # maxima columns read together: one pass over the row-major file per block


def run_autointerp(feature_fn: FeatureFn, n_features: int, sequences: np.ndarray, token_strings,
                   backend: Backend, rules: SamplingRules, n_score: int, seed: int, cache_dir: Path,
                   batch_size: int = 8, require_scored: bool = True) -> AutoInterpResult:
    """`token_strings(ids) -> list[str]` shows a window as text; `sequences` (n, ctx) are the token
    ids the activations are read on, ctx a multiple of 32. The window maxima live in a temporary file
    under `cache_dir`, removed afterwards. Each feature draws from its own generator seeded by (seed,
    feature), so its examples and answers do not depend on what happened to other features.
    A run that scores none of its features is an error, unless `require_scored` is false (the random-init
    floor: that none of an untrained network's features could be scored is its finding)."""
    started = time.time()
    # the backend's parse failures before this run: one backend may score two models in turn
    failures_before = dict(getattr(backend, "parse_failures", {}))
    features = np.sort(np.random.default_rng(seed).choice(n_features, min(n_score, n_features), replace=False))
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix="autointerp-") as tmp:
        maxima, fired = window_maxima(feature_fn, sequences, WINDOW, features, Path(tmp) / "maxima.npy", batch_size)
        samples, skipped = {}, Counter()
        for start in range(0, len(features), COLUMN_BLOCK):
            block = np.asarray(maxima[:, start:start + COLUMN_BLOCK])
            for j in range(block.shape[1]):
                col = start + j
                s = sample_feature(block[:, j], rules, _rng(seed, features[col]))
                if isinstance(s, str):
                    skipped[s.split(" ", 1)[1]] += 1  # the reason without this feature's count
                else:
                    samples[col] = s
        del maxima, block
    wanted = {col: np.concatenate([s.explain, s.test, s.negative]).tolist() for col, s in samples.items()}
    acts = window_activations(feature_fn, sequences, WINDOW, features, wanted, batch_size)
    per_seq = sequences.shape[1] // WINDOW

    def example(w: int, col: int, decile=None) -> Example:
        ids = sequences[w // per_seq, (w % per_seq) * WINDOW:(w % per_seq + 1) * WINDOW]
        return Example(tuple(token_strings(ids.tolist())), acts[(w, col)], decile)

    density = fired / sequences.size
    records = []
    for col, s in progress(samples.items(), desc=f"auto-interp: scoring ({backend.name})", unit="feature"):
        fx = FeatureExamples(int(features[col]),
                             [example(w, col, int(d)) for w, d in zip(s.explain, s.explain_deciles)],
                             [example(w, col, int(d)) for w, d in zip(s.test, s.test_deciles)],
                             [example(w, col) for w in s.negative])
        record = score_feature(backend, fx, _rng(seed, features[col], 1))
        record["firing_density"] = float(density[col])
        record["negatives_verified"] = s.negatives_verified
        records.append(record)
    metrics, details = _summarise(records, len(features), skipped, backend, rules, seed, started, failures_before)
    if require_scored and len(features) and not metrics["detection_n_features"]:
        raise BenchError(f"auto-interp scored none of the {len(features)} features sampled "
                         f"({_reasons(skipped, records, backend)}); nothing was written: {_fix(skipped)}")
    # Density over every sampled feature too: skipped features are the densest (too few negatives)
    # or the sparsest, so the scored ones alone would understate the confound.
    metrics["firing_density_sampled"] = float(density.mean())
    return AutoInterpResult(metrics, details, records)


def _fix(skipped: Counter) -> str:
    """What to change, from why the features were skipped: dense features (fewer windows where they
    never fire than the negatives need) score under negatives=weakest, a labelled protocol change."""
    if any("where it never fires" in reason for reason in skipped):
        return ('features that fire in almost every window can be scored with ARGS="negatives=weakest" '
                '(negatives from the lowest maxima; the result says so), or sample more features '
                '(n_features)')
    return "sample more features (n_features), or check that the backend answers in the expected format"


def _reasons(skipped: Counter, records: list[dict], backend: Backend) -> str:
    counts = [f"{n} skipped: {reason}" for reason, n in skipped.items()]
    failed = sum(bool(r.get("explanation_failed")) for r in records)
    if failed:
        counts.append(f"{failed} without a parseable explanation")
    unscored = len(records) - failed
    if unscored > 0:
        counts.append(f"{unscored} whose detection answers could not be parsed")
    return "; ".join(counts)


def _rng(seed: int, feature, stream: int = 0) -> np.random.Generator:
    return np.random.default_rng([seed, int(feature), stream])


def _summarise(records: list[dict], n_sampled: int, skipped: Counter, backend: Backend, rules: SamplingRules,
               seed: int, started: float, failures_before: dict) -> tuple[dict, dict]:
    few_negatives = sum(n for reason, n in skipped.items() if "where it never fires" in reason)
    metrics = {"autointerp_features_sampled": n_sampled, "autointerp_features_skipped": sum(skipped.values()),
               "autointerp_skipped_few_activating": sum(skipped.values()) - few_negatives,
               "autointerp_skipped_few_negatives": few_negatives,
               "autointerp_explanation_failures": sum(bool(r.get("explanation_failed")) for r in records),
               "autointerp_weakest_negative_features": sum(not r["negatives_verified"] for r in records)}
    details = {"backend": backend.name, "rules": rules.__dict__, "seed": seed, "skipped": dict(skipped)}
    if hasattr(backend, "parse_failures"):  # the llm backend's own count, explanations included
        details["backend_parse_failures"] = {kind: n - failures_before.get(kind, 0)
                                             for kind, n in backend.parse_failures.items()}
    for name in ("detection", "fuzzing"):
        scores = [r[name] for r in records if r.get(name) is not None]
        answers = sum(len(r.get(f"{name}_answers", [])) for r in records)
        failures = sum(r.get(f"{name}_parse_failures", 0) for r in records)
        metrics[f"{name}_parse_failure_rate"] = failures / answers if answers else 0.0
        metrics[f"{name}_n_features"] = len(scores)
        if scores:
            mean, low, high = bootstrap_mean(scores, seed=seed)
            metrics.update({name: mean, f"{name}_ci_low": low, f"{name}_ci_high": high})
        details[f"{name}_by_decile"] = _mean_by_decile([r.get(f"{name}_by_decile", {}) for r in records])
    densities = [r["firing_density"] for r in records]
    if densities:
        metrics["firing_density"] = float(np.mean(densities))
    details["seconds"] = time.time() - started
    return metrics, details


def _mean_by_decile(rows: list[dict]) -> dict:
    keys = [str(d) for d in range(N_DECILES)] + ["negative"]
    return {k: float(np.mean([r[k] for r in rows if k in r])) for k in keys if any(k in r for r in rows)}
