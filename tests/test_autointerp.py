"""Auto-interp protocol pieces on hand-worked cases: sampling, the lexical backend, scoring."""

import numpy as np
import pytest

from tasks.language.autointerp.backend import Example
from tasks.language.autointerp.lexical import LexicalBackend
from tasks.language.autointerp.highlight import active_positions
from tasks.language.autointerp.protocol import FeatureExamples, score_feature
from tasks.language.autointerp.sampling import SamplingRules, decile_of, sample_feature
from tasks.language.autointerp.scoring import accuracy_by_decile, balanced_accuracy, bootstrap_mean


def _ex(text: str, acts, decile=None) -> Example:
    return Example(tuple(text.split("|")), np.asarray(acts, dtype=np.float32), decile)


# --- scoring ---

def test_balanced_accuracy_by_hand_and_parse_failures_left_out():
    # positives: T, F, None -> TPR 1/2; negatives: F, F, T, None -> TNR 2/3; (1/2 + 2/3) / 2 = 7/12
    answers = [True, False, None, False, False, True, None]
    labels = [True, True, True, False, False, False, False]
    assert balanced_accuracy(answers, labels) == pytest.approx(7 / 12)
    assert balanced_accuracy([None, False], [True, False]) is None  # no parsed positive: no score


def test_accuracy_by_decile_reports_activating_deciles_and_negatives_apart():
    got = accuracy_by_decile([True, False, True, None, False], [True, True, True, True, False], [0, 0, 9, 9, None])
    assert got == {"0": 0.5, "9": 1.0, "negative": 1.0}


def test_bootstrap_interval_brackets_the_mean_and_is_seeded():
    values = [0.5, 0.6, 0.7, 0.8, 0.9]
    mean, low, high = bootstrap_mean(values, seed=3)
    assert mean == pytest.approx(0.7) and low < mean < high and 0.5 <= low and high <= 0.9
    assert bootstrap_mean(values, seed=3) == (mean, low, high)
    assert bootstrap_mean([0.4] * 4) == pytest.approx((0.4, 0.4, 0.4))
    # The 2.5th and 97.5th percentiles: the resampled mean of 50 zeros and 50 ones is Binomial(100, 1/2) / 100,
    # whose 2.5% and 97.5% quantiles are 40 and 60 (P(X <= 39) = 0.018, P(X <= 40) = 0.028); a 90%
    # interval would give 0.42 and 0.58.
    _, low, high = bootstrap_mean([0.0] * 50 + [1.0] * 50, n_resamples=20_000, seed=0)
    assert (low, high) == pytest.approx((0.40, 0.60), abs=0.005)


# --- sampling ---

def test_deciles_are_equal_count_bins_of_the_window_maxima():
    window_max = np.array([5.0, 0.0, 1.0, 3.0, 2.0, 4.0, 0.0, 6.0, 7.0, 8.0, 9.0, 10.0])
    activating = np.flatnonzero(window_max > 0)  # 10 windows with maxima 5,1,3,2,4,6,7,8,9,10
    assert decile_of(window_max, activating).tolist() == [4, 0, 2, 1, 3, 5, 6, 7, 8, 9]


def test_sampling_keeps_explanation_and_test_apart_and_negatives_verified():
    rng = np.random.default_rng(0)
    window_max = np.concatenate([np.linspace(0.1, 10, 300), np.zeros(80), -np.ones(20)])
    rules = SamplingRules(n_explain=40, n_test_per_decile=5, n_negative=50, min_activating=200)
    s = sample_feature(window_max, rules, rng)
    assert len(s.explain) == 40 and len(s.test) == 50 and len(s.negative) == 50
    assert not set(s.explain) & set(s.test)
    assert (window_max[s.negative] <= 0).all() and (window_max[s.test] > 0).all()
    assert np.bincount(s.test_deciles).tolist() == [5] * 10
    # the strongest decile holds the 30 largest maxima
    assert (window_max[s.test[s.test_deciles == 9]] >= np.sort(window_max[:300])[-30]).all()
    assert sample_feature(window_max[:150], rules, rng) == "150 activating windows, fewer than 200"


def test_sampling_rules_refuse_impossible_counts():
    with pytest.raises(ValueError, match="multiple of 10"):
        SamplingRules(n_explain=35)
    with pytest.raises(ValueError, match="at least the 90 activating"):
        SamplingRules(min_activating=50)


# --- lexical backend ---

def test_lexical_explanation_is_the_heaviest_tokens_up_to_half_the_mass():
    # masses: "cat" 4 + 3 = 7, "dog" 2, "the" 1 (" The" and "the" fold together) -> total 10;
    # "cat" alone is 0.7 >= 0.5 of the mass
    examples = [_ex(" The| cat| sat", [0.5, 4, 0]), _ex("the| dog| cat", [0.5, 2, 3])]
    assert LexicalBackend().explain(examples) == 'fires on the tokens: ["cat"]'
    assert LexicalBackend(mass=0.8).explain(examples) == 'fires on the tokens: ["cat", "dog"]'
    assert LexicalBackend().explain([_ex("a| b", [0, -1])]) is None  # no positive activation


def test_lexical_scorer_reads_only_the_explanation_text():
    backend = LexicalBackend()
    explanation = 'fires on the tokens: ["cat", "dog"]'
    batch = [_ex("A| Cat| ran", [0, 0, 0]), _ex("a| bird", [0, 0])]
    assert backend.detect(explanation, batch) == [True, False]
    fuzz = [Example(("a", " cat", " dog"), np.zeros(3), highlighted=(1, 2)),
            Example(("a", " cat", " dog"), np.zeros(3), highlighted=(0, 1)),
            Example(("a", " cat"), np.zeros(2), highlighted=())]
    assert backend.fuzz(explanation, fuzz) == [True, False, False]
    assert backend.detect("something else", batch) == [None, None]


def test_fuzzing_highlights_each_negative_with_the_activating_windows_mean_count_rounded_up():
    from tasks.language.autointerp.protocol import _fuzz_examples

    # activating windows: [1, .5, 0] highlights 2 tokens (>= 0.3 of its peak), [1, 0, 0] one: mean 1.5 -> 2
    fx = FeatureExamples(7, [], [_ex("a| b| c", [1, .5, 0], 9), _ex("d| e| f", [1, 0, 0], 9)],
                         [_ex("g| h| i", [0, 0, 0]), _ex("j", [0])])
    fuzzed = _fuzz_examples(fx, np.random.default_rng(0))
    assert [ex.highlighted for ex in fuzzed[:2]] == [(0, 1), (0,)]
    assert len(fuzzed[2].highlighted) == 2 and len(set(fuzzed[2].highlighted)) == 2
    assert fuzzed[3].highlighted == (0,)  # a one-token window can hold one highlight


def test_the_fuzzing_count_is_of_highlighted_tokens_rounded_up_not_of_nonzero_ones_or_rounded():
    from tasks.language.autointerp.protocol import _fuzz_examples

    # highlighted 1, 1, 1, 2: mean 1.25 -> 2 (rounding would give 1); non-zero 4, 4, 4, 2 (delphi's count): 4
    weak_tail = [_ex("a| b| c| d", [1, .1, .1, .1], 9) for _ in range(3)]
    fx = FeatureExamples(7, [], weak_tail + [_ex("e| f| g| h", [1, .5, 0, 0], 9)], [_ex("i| j| k| l", [0] * 4)])
    assert len(_fuzz_examples(fx, np.random.default_rng(0))[4].highlighted) == 2


# --- one feature end to end ---

def test_a_pure_token_feature_scores_perfectly_and_records_its_answers():
    rng = np.random.default_rng(1)
    cat = [_ex("x| cat| y", [0, 1 + d, 0], decile=d) for d in range(10)]
    explain = [_ex("cat| z", [2, 0])] * 4
    negatives = [_ex("x| dog| y", [0, 0, 0])] * 10
    record = score_feature(LexicalBackend(), FeatureExamples(7, explain, cat, negatives), rng)
    assert record["explanation"] == 'fires on the tokens: ["cat"]'
    assert record["detection"] == 1.0 and record["fuzzing"] == 1.0
    assert record["detection_parse_failures"] == 0
    assert record["detection_by_decile"]["0"] == 1.0 and record["detection_by_decile"]["negative"] == 1.0
    assert record["labels"] == [1] * 10 + [0] * 10 and len(record["fuzzing_answers"]) == 20


def test_highlights_follow_delphis_threshold_of_each_windows_maximum():
    assert active_positions(_ex("a| b| c| d", [1.0, 0.29, 0.3, 0.0])) == (0, 2)
    # exactly 0.3 of the peak is "at least" 0.3 of it (0.3 * 10 is 3.0000000000000004 in floats)
    assert active_positions(_ex("a| b| c", [10.0, 3.0, 2.99])) == (0, 1)
    assert active_positions(_ex("a| b", [0.0, 0.0])) == ()


# --- caching and the whole run, on a token-identity "model" (a fake for our own glue) ---

def _token_detectors(tokens):
    """Feature f fires on token f, more strongly later in the sequence; nowhere else."""
    import torch

    pos = torch.arange(tokens.shape[1], dtype=torch.float32)[None, :, None]
    return (tokens[..., None] == torch.arange(50)).float() * (1 + pos / 100)


def test_window_maxima_and_activations_match_a_brute_force_pass(tmp_path):
    from tasks.language.autointerp.activation_cache import window_activations, window_maxima

    seqs = np.random.default_rng(0).integers(0, 50, size=(5, 64))
    features = np.array([3, 7, 11])
    maxima, fired = window_maxima(_token_detectors, seqs, 32, features, tmp_path / "max.npy", batch_size=2)
    full = _token_detectors(__import__("torch").from_numpy(seqs)).numpy()[..., features]  # (5, 64, 3)
    assert np.array_equal(np.asarray(maxima), full.reshape(5, 2, 32, 3).max(axis=2).reshape(10, 3))
    assert fired.tolist() == (full > 0).sum(axis=(0, 1)).tolist()
    got = window_activations(_token_detectors, seqs, 32, features, {1: [3, 8]}, batch_size=2)
    assert set(got) == {(3, 1), (8, 1)}
    assert np.array_equal(got[(3, 1)], full[1, 32:64, 1]) and np.array_equal(got[(8, 1)], full[4, 0:32, 1])


def test_token_detectors_are_explained_and_detected_perfectly_by_the_lexical_backend(tmp_path):
    from tasks.language.autointerp.run import run_autointerp

    seqs = np.random.default_rng(1).integers(0, 50, size=(100, 64))
    rules = SamplingRules(n_explain=10, n_test_per_decile=1, n_negative=10, min_activating=20)
    result = run_autointerp(_token_detectors, 50, seqs, lambda ids: [f" t{i}" for i in ids], LexicalBackend(),
                            rules, n_score=6, seed=0, cache_dir=tmp_path)
    m = result.metrics
    assert m["autointerp_features_sampled"] == 6 and m["autointerp_features_skipped"] == 0
    assert m["detection"] == 1.0 and m["fuzzing"] == 1.0 and m["detection_ci_low"] == 1.0
    assert m["detection_parse_failure_rate"] == 0.0
    # feature f fires exactly where token f stands: its density is that token's share of the text
    exact = np.mean([(seqs == r["feature"]).mean() for r in result.records])
    assert m["firing_density"] == pytest.approx(exact, abs=1e-12)
    assert {r["explanation"] for r in result.records} == {f'fires on the tokens: ["t{f}"]' for f in
                                                          (r["feature"] for r in result.records)}
    again = run_autointerp(_token_detectors, 50, seqs, lambda ids: [f" t{i}" for i in ids], LexicalBackend(),
                           rules, n_score=6, seed=0, cache_dir=tmp_path / "again")
    assert again.records == result.records  # a fixed seed gives the same records
    assert list(tmp_path.glob("autointerp-*")) == []  # the window maxima file is gone after the run
    assert m["firing_density_sampled"] == pytest.approx(exact, abs=1e-12)  # none skipped: the same features


def test_a_backend_scoring_two_models_in_turn_counts_each_runs_parse_failures_apart(tmp_path):
    # The language task scores a model, then its random-init floor, with one backend: each result's
    # backend_parse_failures must be its own run's, not the running total.
    from tasks.language.autointerp.run import run_autointerp

    class Unparsed(LexicalBackend):
        """The lexical scorer whose every explanation counts as a parse failure, as the llm backend counts."""
        def __init__(self):
            super().__init__()
            self.parse_failures = {"explain": 0, "detect": 0, "fuzz": 0}

        def explain(self, examples):
            self.parse_failures["explain"] += 1
            return super().explain(examples)

    seqs = np.random.default_rng(1).integers(0, 50, size=(100, 64))
    rules = SamplingRules(n_explain=10, n_test_per_decile=1, n_negative=10, min_activating=20)
    backend = Unparsed()
    runs = [run_autointerp(_token_detectors, 50, seqs, lambda ids: [f" t{i}" for i in ids], backend, rules,
                           n_score=n, seed=0, cache_dir=tmp_path) for n in (6, 4)]
    assert [r.details["backend_parse_failures"]["explain"] for r in runs] == [6, 4]
    assert backend.parse_failures["explain"] == 10


def test_weakest_negatives_stand_in_only_when_verified_ones_run_short():
    rng = np.random.default_rng(0)
    dense_like = np.linspace(0.01, 5, 400)  # fires a little in every window: no verified negative
    rules = SamplingRules(n_explain=40, n_test_per_decile=5, n_negative=50, min_activating=200)
    assert sample_feature(dense_like, rules, rng) == "0 windows where it never fires, fewer than the 50 negatives needed"
    weak = sample_feature(dense_like, SamplingRules(negatives="weakest"), rng)
    assert not weak.negatives_verified
    assert sorted(weak.negative.tolist()) == list(range(50))  # the 50 lowest maxima
    assert not set(weak.negative) & (set(weak.test) | set(weak.explain))
    sparse = np.concatenate([dense_like, np.zeros(60)])
    assert sample_feature(sparse, SamplingRules(negatives="weakest"), rng).negatives_verified


def test_features_firing_everywhere_stop_the_run_pointing_at_weakest_negatives(tmp_path):
    from core.errors import BenchError
    from tasks.language.autointerp.run import run_autointerp

    def everywhere(ids):  # every feature fires on every token: no window without activation
        import torch

        return torch.ones(*ids.shape, 4)

    seqs = np.random.default_rng(1).integers(0, 50, size=(40, 64))
    rules = SamplingRules(n_explain=10, n_test_per_decile=1, n_negative=10, min_activating=20)
    with pytest.raises(BenchError, match='scored none of the 4 features.*ARGS="negatives=weakest"'):
        run_autointerp(everywhere, 4, seqs, lambda ids: [f" t{i}" for i in ids], LexicalBackend(), rules,
                       n_score=4, seed=0, cache_dir=tmp_path)


def test_the_floor_records_that_it_scored_nothing_instead_of_stopping(tmp_path):
    # An untrained network's units that all fire everywhere cannot be scored: for the random-init floor
    # that is the finding (counted, with why), not an error ending the trained model's run.
    from tasks.language.autointerp.run import run_autointerp

    def everywhere(ids):
        import torch

        return torch.ones(*ids.shape, 4)

    seqs = np.random.default_rng(1).integers(0, 50, size=(40, 64))
    rules = SamplingRules(n_explain=10, n_test_per_decile=1, n_negative=10, min_activating=20)
    result = run_autointerp(everywhere, 4, seqs, lambda ids: [f" t{i}" for i in ids], LexicalBackend(), rules,
                            n_score=4, seed=0, cache_dir=tmp_path, require_scored=False)
    assert result.records == []
    assert result.metrics["detection_n_features"] == 0 and "detection" not in result.metrics
    assert result.metrics["autointerp_skipped_few_negatives"] == 4
    assert list(result.details["skipped"].values()) == [4]
