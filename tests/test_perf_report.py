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


def test_the_front_door_table_shows_cpu_and_the_helpers_memory_and_older_records_still_render():
    from perf.run import _markdown

    now = {"cold_cache": {"wall_seconds": 80.2, "peak_rss_mib": 2500.0, "cpu_seconds": 150.4,
                          "tree_peak_pss_mib": 2100.0},
           "warm_cache": {"wall_seconds": 50.0, "peak_rss_mib": 2000.0}}  # a record from before the new fields
    text = "\n".join(_markdown({"end_to_end": {"command": "make bench", "other_runnable_before": 0, **now}}))
    assert "| cold | 80 | 150 | 2500 | 2100 |" in text and "| warm | 50 | - | 2000 | - |" in text
    assert "(0 other thread(s) wanting a CPU before it)" in text
