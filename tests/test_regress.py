"""The regression gate's comparison: reference / now / delta / tolerance, and its exit status."""

import pytest

from bench.errors import BenchError
from bench.regress import Check, _compare, run

CHECKS = [Check("chess", "dense", "cpu", (), {"coverage": 0.005, "reconstruction": 0.005})]
REFERENCE = {"git_sha": "abc", "created": "then",
             "checks": {"chess/dense/cpu": {"metrics": {"coverage": 0.100, "reconstruction": 0.050}}}}


def test_scores_within_tolerance_pass_and_the_table_shows_each(capsys):
    now = {"chess/dense/cpu": {"coverage": 0.104, "reconstruction": 0.047}}
    assert _compare(CHECKS, REFERENCE, now) == 0
    out = capsys.readouterr().out
    assert "chess/dense/cpu" in out and "0.0040" in out and "-0.0030" in out and "all scores within tolerance" in out


def test_a_score_outside_tolerance_or_missing_fails(capsys):
    assert _compare(CHECKS, REFERENCE, {"chess/dense/cpu": {"coverage": 0.094, "reconstruction": 0.050}}) == 1
    assert "REGRESSED" in capsys.readouterr().out
    assert _compare(CHECKS, REFERENCE, {"chess/dense/cpu": {"coverage": 0.100, "reconstruction": None}}) == 1
    assert "MISSING" in capsys.readouterr().out


def test_no_reference_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("MOEXBENCH_RESULTS", str(tmp_path))
    with pytest.raises(BenchError, match=r"no regression reference at .*tiny.json; create it with "
                                         r"`python -m bench.regress --update --mode tiny`"):
        run("tiny", update=False, threads=1)
