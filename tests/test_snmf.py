"""dense+snmf: semi-NMF of the MLP hidden units (models/snmf.py). Ding et al.'s updates never raise the
objective and keep the codes non-negative; codes of new tokens are the non-negative least-squares
solution, recovered exactly on data built from known non-negative codes; bad input is one line."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bench import snmf_store
from core.errors import BenchError
from core.results import load_result, result_path
from models import snmf

ROOT = Path(__file__).resolve().parents[1]


def _data(n=600, d=24, k=8, seed=0):
    gen = torch.Generator().manual_seed(seed)
    f = torch.randn(d, k, generator=gen)
    g = torch.randn(n, k, generator=gen).relu()  # about half the codes exactly 0
    return g @ f.T, f, g


def test_each_update_lowers_the_objective_and_codes_stay_non_negative():
    x, _, _ = _data()
    g = torch.rand(len(x), 8, generator=torch.Generator().manual_seed(1))
    f = snmf.update_f(x, g)
    values = [snmf.objective(x, f, g)]
    for _ in range(30):
        g = snmf.update_g(x, f, g)
        assert (g >= 0).all()
        values.append(snmf.objective(x, f, g))
        f = snmf.update_f(x, g)
        values.append(snmf.objective(x, f, g))
    # float32 arithmetic: each step may not rise by more than rounding
    assert all(b <= a * (1 + 1e-5) for a, b in zip(values, values[1:]))
    assert values[-1] < 0.2 * values[0]


def test_the_f_update_is_the_least_squares_solution():
    x, _, _ = _data()
    g = torch.rand(len(x), 8, generator=torch.Generator().manual_seed(2))
    f = snmf.update_f(x, g)
    residual = x - g @ f.T
    assert (g.T @ residual).abs().max() < 1e-2 * (g.T @ x).abs().max()  # normal equations hold


def test_codes_of_new_tokens_are_the_non_negative_least_squares_solution():
    x, f, g = _data()
    codes = snmf.encode(x, f, 2000)
    assert (codes >= 0).all()
    assert torch.allclose(codes, g, atol=1e-3)  # F has full column rank: the solution is unique
    # hand-worked: with F = I, x = (1, -1, 2) the nearest non-negative code is (1, 0, 2), its 0 exact
    assert snmf.encode(torch.tensor([[1.0, -1.0, 2.0]]), torch.eye(3), 50).tolist() == [[1.0, 0.0, 2.0]]
    assert torch.allclose(snmf.decode(codes, f), x, atol=1e-2)
    assert codes.shape == g.shape and snmf.encode(x.reshape(2, 300, 24), f, 10).shape == (2, 300, 8)


def test_a_fit_that_diverges_is_refused_and_too_few_tokens_too():
    x, _, _ = _data()
    x[3, 4] = float("nan")
    with pytest.raises(BenchError, match="diverged at iteration 0"):
        snmf_store.fit_checked(x, 8, 5, 0, "blocks.0.mlp.hook_post")
    settings = snmf_store.settings_for("tiny")
    with pytest.raises(BenchError, match="at least as many tokens as features"):
        snmf_store.fit_on_stream(None, "blocks.0.mlp.hook_post", None, settings, settings.fit_tokens + 1, 0)


def test_factors_of_another_model_are_refused(tmp_path):
    snmf_store.save(torch.randn(24, 8), tmp_path / "f", {"features": 8})
    assert snmf_store.load(tmp_path / "f", 24).shape == (24, 8)
    with pytest.raises(BenchError, match="fitted on another model"):
        snmf_store.load(tmp_path / "f", 32)


def test_dense_snmf_fits_and_scores_end_to_end_at_tiny():
    def bench(*extra):
        return subprocess.run([sys.executable, "-m", "bench", "bench", "--model", "dense+snmf", "--task", "chess",
                               "--preset", "tiny", "--threads", "1", "probe_games=20", "legal_move_games=5", *extra],
                              cwd=ROOT, capture_output=True, text=True, timeout=900, env=dict(os.environ))

    out = bench()
    assert out.returncode == 0, out.stderr[-2000:]
    assert "semi-NMF fitted" in out.stdout
    record = load_result(result_path("chess", "dense+snmf", "tiny", 0))
    assert record["details"]["feature_hook"] == "blocks.1.mlp.hook_post -> semi-NMF codes"
    assert record["provenance"]["features_from"]["features"] == 4 * 128 == record["metrics"]["n_features"]
    assert 0 < record["metrics"]["explained_variance"] <= 1  # the factorisation beats the mean
    refused = bench("site=resid")
    assert refused.returncode == 2 and "its only site is mlp" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
