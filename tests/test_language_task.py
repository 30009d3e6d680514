"""The language task end to end at the tiny preset on the embedded corpus: train, perplexity and loss
recovered, lexical auto-interp, the results contract, the per-feature records and their HTML page."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.metrics import lookup
from core.results import load_result, result_path

ROOT = Path(__file__).resolve().parents[1]


def _bench(*args, env=None):
    return subprocess.run([sys.executable, "-m", "bench", "bench", "--task", "language", "--preset", "tiny",
                           "--threads", "1", *args], cwd=ROOT, capture_output=True, text=True, timeout=900,
                          env={**os.environ, **(env or {})})


# Tiny models are barely trained: their sparse units and SAE latents rarely reach enough activating
# windows to be scored, so those runs sample 256 features and take the weakest windows as negatives;
# each must then score some (the scoring itself is checked on known features in test_autointerp.py).
@pytest.mark.parametrize("model, own_units, args", [
    ("dense", True, ["negatives=weakest"]), ("moex", True, ["negatives=weakest", "n_features=256"]),
    ("dense+sae", False, ["negatives=weakest", "n_features=256"])])
def test_language_bench_tiny_writes_fidelity_and_autointerp(model, own_units, args):
    out = _bench("--model", model, *args)
    assert out.returncode == 0, out.stderr[-2000:]
    path = result_path("language", model, "tiny", 0)
    m = load_result(path)["metrics"]
    for name in ("perplexity", "perplexity_splice", "loss_recovered", "val_loss", "l0_fidelity",
                 "autointerp_features_sampled", "autointerp_features_skipped", "n_features"):
        assert name in m, name
    assert m["perplexity"] > 1
    assert [n for n in m if lookup("language", n) is None] == []  # every metric is declared
    if own_units:  # a model's own units are its computation: splicing them back changes nothing
        assert m["loss_recovered"] == pytest.approx(1.0, abs=1e-4)  # two float paths: hooked (z) and fused
        assert m["perplexity_splice"] == pytest.approx(m["perplexity"], rel=1e-6)
    else:
        assert m["loss_recovered"] < 1.0
    scored = m["autointerp_features_sampled"] - m["autointerp_features_skipped"]
    records = [json.loads(line) for line in path.with_suffix(".jsonl").read_text().splitlines()]
    assert len(records) == scored
    assert m["autointerp_skipped_few_activating"] + m["autointerp_skipped_few_negatives"] == \
        m["autointerp_features_skipped"]
    assert scored >= 1
    # every scored feature has an answer per test example and a balanced accuracy in [0, 1]
    assert 0.0 <= m["detection"] <= 1.0 and m["detection_ci_low"] <= m["detection"] <= m["detection_ci_high"]
    assert all(len(r["detection_answers"]) == len(r["labels"]) for r in records)
    assert records[0]["backend"] == "lexical"
    assert path.with_suffix(".html").read_text().count("<tr>") == scored + 1
    # the random-init floor: the same sampled features of the untrained architecture, scored the same way
    result = load_result(path)
    floor = result["details"]["random_init"]
    assert floor["metrics"]["autointerp_features_sampled"] == m["autointerp_features_sampled"]
    assert floor["rules"] == result["details"]["autointerp"]["rules"]
    assert m["detection_n_features_random_init"] == floor["metrics"]["detection_n_features"]
    # another network's features: its firing differs (the same adapter scored twice would not)
    assert floor["metrics"]["firing_density_sampled"] != m["firing_density_sampled"]
    made = result["provenance"]["random_init"]  # how to build the floor again: its seed, its fitted dictionary
    assert made["model_seed"] == 1000 and ("features_from" in made) == (not own_units)
    if not own_units:
        assert made["features_from"]["sae_sha256"] != result["provenance"]["features_from"]["sae_sha256"]
    if m["detection_n_features_random_init"]:
        assert m["detection_random_init"] == floor["metrics"]["detection"]


def test_a_run_that_scores_no_feature_fails_naming_why_and_writes_nothing(tmp_path):
    # its own results folder: over the 256-feature result above, a 2-feature run is refused before it starts
    out = _bench("--model", "moex", "n_features=2", env={"MOEXBENCH_RESULTS": str(tmp_path)})
    assert out.returncode == 2
    assert "error: auto-interp scored none of the 2 features sampled (2 skipped:" in out.stderr
    assert list(tmp_path.rglob("*.json")) == []


def test_language_rejects_an_unknown_backend_in_one_line():
    out = _bench("--model", "dense", "backend=gpt5")
    assert out.returncode == 2
    assert out.stderr.strip() == "error: backend 'gpt5' unknown; choose one of lexical, llm"


def test_a_weak_headline_is_said_when_it_is_printed():
    from tasks.language.task import warnings

    sound = {"mostly_dead": 0, "dead_fraction": 0.1, "autointerp_features_sampled": 16, "detection_n_features": 8,
             "ce_clean": 3.0, "ce_zero_ablation": 3.5, "ce_splice": 3.2, "loss_recovered": 0.6}
    assert warnings(sound, "m") == []  # half the sample scored is enough
    weak = {**sound, "mostly_dead": 1, "dead_fraction": 0.97, "detection_n_features": 1,
            "autointerp_features_skipped": 13, "autointerp_skipped_few_activating": 4,
            "autointerp_skipped_few_negatives": 9, "ce_zero_ablation": 3.004, "loss_recovered": -49.0}
    said = warnings(weak, "m")
    assert said[0].startswith("97% of m's features never fire")
    assert said[1] == ("auto-interp scored 1 of the 16 features sampled (skipped: 4 firing in too few windows, "
                       "9 in too many to find negatives; 2 without parseable answers): detection and fuzzing "
                       "are means over 1")
    assert said[2] == ("zero-ablating the scored site moves the loss by +0.0040 nats only, so loss_recovered "
                       "(-49.000) divides by almost nothing")
    # a model's own units: loss recovered is 1 by construction, however little the ablation moves the loss
    assert len(warnings({**weak, "ce_splice": 3.0, "loss_recovered": 1.0}, "m")) == 2
    # the floor: said when it scored under half its sample, as the model is
    assert warnings({**sound, "detection_n_features_random_init": 8}, "m") == []
    assert warnings({**sound, "detection_n_features_random_init": 1}, "m") == [
        "the random-init floor scored 1 of its 16 sampled features (details.random_init says why): "
        "detection's and fuzzing's floors are means over 1"]
    assert warnings({**sound, "detection_n_features_random_init": 0}, "m")[0].endswith(
        "detection and fuzzing have no floor in this result")
