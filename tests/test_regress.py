"""The regression gate's comparison: reference / now / delta / tolerance, and its exit status."""

import pytest

from bench.regress import Check, _compare, run
from core.errors import BenchError

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


def test_the_checkpoints_mode_refuses_to_train_a_missing_checkpoint(tmp_path):
    from bench.regress import _run_check

    check = Check("chess", "moex", "short-w384", (), {"coverage": 0.005})  # never committed
    with pytest.raises(BenchError, match=r"needs the committed checkpoint .*moex-short-w384.safetensors; "
                                         r"train it with `make train MODEL=moex TASK=chess PRESET=short-w384`"):
        _run_check(check, tmp_path, "checkpoints", threads=1)
    sae = Check("chess", "dense+sae", "short-w384", (), {"coverage": 0.005})  # an SAE needs its base model
    with pytest.raises(BenchError, match=r"dense-short-w384.safetensors"):
        _run_check(sae, tmp_path, "checkpoints", threads=1)


def test_no_train_makes_a_missing_model_one_clear_error(tmp_path):
    import os
    import subprocess
    import sys

    from core.results import ROOT

    env = {**os.environ, "MOEXBENCH_NO_TRAIN": "1", "MOEXBENCH_CHECKPOINTS": str(tmp_path / "checkpoints"),
           "MOEXBENCH_RESULTS": str(tmp_path / "results")}
    out = subprocess.run([sys.executable, "-m", "bench", "bench", "--task", "chess", "--model", "dense+sae",
                          "--preset", "tiny", "--threads", "1"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.strip().startswith("error: no checkpoint at ") and "make train MODEL=dense" in out.stderr
    assert not (tmp_path / "checkpoints").exists() or not any((tmp_path / "checkpoints").rglob("*.safetensors"))


def test_updating_one_task_keeps_the_other_tasks_entries(tmp_path, monkeypatch):
    import json

    import bench.regress as regress

    monkeypatch.setenv("MOEXBENCH_RESULTS", str(tmp_path))
    checks = [Check("chess", "dense", "cpu", (), {"coverage": 0.005}),
              Check("language", "dense", "cpu", (), {"perplexity": 0.01})]
    monkeypatch.setitem(regress.MODES, "unit", checks)
    ran = []
    monkeypatch.setattr(regress, "_run_check", lambda c, *a: ran.append(c.key) or {"coverage": 0.2})
    old = {"mode": "unit", "git_sha": "old", "checks": {
        "chess/dense/cpu": {"metrics": {"coverage": 0.1}}, "language/dense/cpu": {"metrics": {"perplexity": 9.0}}}}
    (tmp_path / "regress").mkdir()
    (tmp_path / "regress" / "unit.json").write_text(json.dumps(old))
    assert run("unit", update=True, threads=1, only=("chess",)) == 0
    new = json.loads((tmp_path / "regress" / "unit.json").read_text())
    assert ran == ["chess/dense/cpu"]
    assert new["checks"]["language/dense/cpu"] == old["checks"]["language/dense/cpu"]
    assert new["checks"]["chess/dense/cpu"]["metrics"] == {"coverage": 0.2}
    assert new["checks"]["chess/dense/cpu"]["command"].endswith("--only chess")
    with pytest.raises(BenchError, match="tasks toy have no check in mode unit"):
        run("unit", update=True, threads=1, only=("toy",))
