"""Welch's t-test, against a case worked by hand and against scipy's own."""

import math

import pytest
from scipy import stats

from core.significance import difference_lines, welch


def test_welch_on_a_hand_worked_case():
    # a: mean 2, variance 1 (n 3); b: mean 0, variance 4 (n 3).
    # se^2 = 1/3 + 4/3 = 5/3; t = 2 / sqrt(5/3) = 1.5492; df = (5/3)^2 / ((1/3)^2/2 + (4/3)^2/2) = 3.2759
    out = welch([1.0, 2.0, 3.0], [-2.0, 0.0, 2.0])
    assert out["diff"] == pytest.approx(2.0)
    assert out["t"] == pytest.approx(2 / math.sqrt(5 / 3), rel=1e-9)
    assert out["df"] == pytest.approx((5 / 3) ** 2 / ((1 / 9) / 2 + (16 / 9) / 2), rel=1e-9)
    reference = stats.ttest_ind([1.0, 2.0, 3.0], [-2.0, 0.0, 2.0], equal_var=False)
    assert out["p"] == pytest.approx(reference.pvalue, rel=1e-9)


def test_one_seed_is_untested_and_no_spread_is_decided_by_the_difference():
    assert welch([0.5], [0.1, 0.2]) is None
    assert welch([0.3, 0.3], [0.1, 0.1])["p"] == 0.0
    assert welch([0.3, 0.3], [0.3, 0.3])["p"] == 1.0
    rows = difference_lines({"moex": [0.3, 0.4], "dense": [0.1], "switch": [0.2, 0.2]},
                           [("moex", "switch"), ("moex", "dense"), ("moex", "absent")], "coverage")
    assert len(rows) == 2 and rows[1].endswith("one seed: untested |")
