"""Welch's t-test and Holm's adjustment, against cases worked by hand and against scipy's own."""

import math

import pytest
from scipy import stats

from core.significance import difference_table, differences, holm, welch


def test_welch_on_a_hand_worked_case():
    # a: mean 2, variance 1 (n 3); b: mean 0, variance 4 (n 3).
    # se^2 = 1/3 + 4/3 = 5/3; t = 2 / sqrt(5/3) = 1.5492; df = (5/3)^2 / ((1/3)^2/2 + (4/3)^2/2) = 3.2759
    out = welch([1.0, 2.0, 3.0], [-2.0, 0.0, 2.0])
    assert out["diff"] == pytest.approx(2.0)
    assert out["t"] == pytest.approx(2 / math.sqrt(5 / 3), rel=1e-9)
    assert out["df"] == pytest.approx((5 / 3) ** 2 / ((1 / 9) / 2 + (16 / 9) / 2), rel=1e-9)
    reference = stats.ttest_ind([1.0, 2.0, 3.0], [-2.0, 0.0, 2.0], equal_var=False)
    assert out["p"] == pytest.approx(reference.pvalue, rel=1e-9)


def test_welch_with_unequal_seed_counts():
    # a: mean 2, variance 1 (n 3); b: mean 5, variance 8 (n 2): se^2 = 1/3 + 8/2 = 13/3, where pooled
    # variance or swapped n's would give another se; t = -3 / sqrt(13/3) = -1.4412;
    # df = (13/3)^2 / ((1/3)^2/2 + 4^2/1) = 1.1701
    a, b = [1.0, 2.0, 3.0], [3.0, 7.0]
    out = welch(a, b)
    assert out["t"] == pytest.approx(-3 / math.sqrt(13 / 3), rel=1e-9)
    assert out["df"] == pytest.approx((13 / 3) ** 2 / ((1 / 9) / 2 + 16), rel=1e-9)
    assert out["p"] == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue, rel=1e-9)


def test_one_seed_or_no_spread_is_untested():
    assert welch([0.5], [0.1, 0.2]) is None
    # no spread on either side: t would be infinite for a rounding difference (0.1 + 0.2 != 0.3)
    assert welch([0.1 + 0.2] * 2, [0.3, 0.3]) is None
    assert welch([0.3, 0.3], [0.1, 0.2]) is not None  # spread on one side is enough
    rows = differences({"moex": [0.3, 0.4], "dense": [0.1], "switch": [0.2, 0.2], "moe": [0.3, 0.3]},
                       [("moex", "switch"), ("moex", "dense"), ("moex", "absent"), ("switch", "moe")], "coverage")
    assert [r.untested for r in rows] == ["", "one seed", "no spread on either side"]


def test_holm_on_a_hand_worked_case():
    # sorted 0.01, 0.02, 0.04, 0.3 -> x4, x3, x2, x1 = 0.04, 0.06, 0.08, 0.3, kept non-decreasing
    assert holm([0.04, 0.3, 0.01, 0.02]) == pytest.approx([0.08, 0.3, 0.04, 0.06])
    # a later product below an earlier one is raised to it; nothing above 1
    assert holm([0.02, 0.021, 0.9]) == pytest.approx([0.06, 0.06, 0.9])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])
    assert holm([]) == []


def test_the_table_rows_say_seeds_and_the_adjusted_p():
    rows = differences({"a": [1.0, 2.0, 3.0], "b": [3.0, 7.0], "c": [0.5]}, [("a", "b"), ("a", "c")], "coverage")
    p = stats.ttest_ind([1.0, 2.0, 3.0], [3.0, 7.0], equal_var=False).pvalue
    assert difference_table(rows) == [
        f"| coverage | a - b | 3 / 2 | -3.000 | -1.44 | 1.2 | {p:.3f} | {p:.3f} |",  # one test: Holm's p is p
        "| coverage | a - c | 3 / 1 | +1.500 | - | - | one seed: untested | - |"]
