"""perf.md judges each performance aim from the measured figures and leaves out what was not measured."""

from perf.run import _aims


def test_aims_are_judged_from_the_figures_and_absent_ones_are_left_out():
    record = {"train_step_ratio_to_dense": {"dense": 1.0, "moex": 1.3},
              "chess_counting_seconds_by_features": {"2048": 2.0, "32768": 41.0},
              "autointerp": {"lexical_features_per_second": 60.0,
                             "caching": [{"tokens": 100, "peak_rss_mib": 500.0}, {"tokens": 1000, "peak_rss_mib": 1100.0}]}}
    text = "\n".join(_aims(record))
    assert "| moex training step over dense (<= 1.25x) | 1.30x | missed |" in text
    assert "| chess counting at 32768 features (< 60 s) | 41.0 s | met |" in text
    assert "| lexical auto-interp (>= 50 features/s) | 60/s | met |" in text
    assert "| caching peak memory at 10x the tokens (flat: under 2x) | 2.20x | missed |" in text
    assert "MoE layer" not in text and "utilisation" not in text
    assert _aims({}) == []
