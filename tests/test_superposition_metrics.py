"""Superposition metrics on hand-built weights with known answers (docs/superposition.md section 5)."""

import math

import pytest
import torch

from tasks.superposition import metrics


def _one_expert(rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)[None, None]  # (N=1, E=1, n, m)


def test_orthogonal_antipodal_and_unused_features():
    # Features 0, 1 on their own axes; 2 and 3 antipodal on the third axis; 4 unused.
    W = _one_expert([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, -1], [0, 0, 0]])
    D = metrics.feature_dimensionality(W)[0, 0]
    assert D.tolist() == pytest.approx([1.0, 1.0, 0.5, 0.5, 0.0], rel=1e-4)  # the reference's 1e-5 in W_hat
    inter = metrics.interference(W)[0, 0]
    assert inter.tolist() == pytest.approx([0.0, 0.0, 1.0, 1.0, 0.0], abs=1e-4)
    mono = metrics.monosemantic(W, threshold=0.2, min_norm=0.1)[0, 0]
    assert mono.tolist() == [True, True, False, False, False]  # the unused feature has no norm


def test_interference_is_the_norm_of_projections_onto_the_unit_row_and_both_floors_apply_to_norms():
    """Rows of other lengths than 1 and values between 0 and 1 tell the definition from its near misses:
    the square of the norm, cosines in place of projections, the floors applied to squares."""
    W = _one_expert([[2, 0, 0], [0.3, 0.4, 0], [0, 0, 0.15]])
    # feature 0: W_hat_0 = (1, 0, 0) -> projections 0.3 (onto feature 1) and 0: sqrt(0.09) = 0.3
    #   (its square, 0.09, would pass the 0.2 threshold; the cosine with feature 1 would be 0.6)
    # feature 1: W_hat_1 = (0.6, 0.8, 0) -> 1.2 onto feature 0, 0 onto feature 2: 1.2 (cosines: 0.6)
    # feature 2: alone on its axis, norm 0.15: over min_norm 0.1 (its squared norm, 0.0225, is not)
    assert metrics.interference(W)[0, 0].tolist() == pytest.approx([0.3, 1.2, 0.0], abs=1e-4)
    assert metrics.monosemantic(W, threshold=0.2, min_norm=0.1)[0, 0].tolist() == [False, False, True]


def test_features_per_dimension_dense_and_usage_weighted():
    # Dense: 5 features of norm 1 in m = 3 dimensions -> |W|_F^2 / m = 5/3.
    W = _one_expert([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, -1], [0.6, 0.8, 0]])
    assert metrics.features_per_dimension(W, torch.ones(1, 1), top_k=1).item() == pytest.approx(5 / 3)
    # Two experts of m = 2: |W_0|^2 = 2, |W_1|^2 = 4 (two features of norm sqrt 2); usage 0.25 / 0.75,
    # k = 2: (0.25 * 2/2 + 0.75 * 4/2) / 2 = 0.875.
    s = math.sqrt(2)
    W2 = torch.tensor([[[[1, 0], [0, 1]], [[s, 0], [0, s]]]], dtype=torch.float32)
    fpd = metrics.features_per_dimension(W2, torch.tensor([[0.25, 0.75]]), top_k=2)
    assert fpd.item() == pytest.approx(0.875)


def test_allocation_and_global_dimensionality():
    # Feature 0 lives only in expert 0; feature 1 splits its squared norm 1:3 between the experts.
    W = torch.tensor([[[[1.0, 0.0], [0.5, 0.0]], [[0.0, 0.0], [0.0, math.sqrt(0.75)]]]])
    S = metrics.allocation(W)[0]
    assert S[:, 0].tolist() == pytest.approx([1.0, 0.0]) and S[:, 1].tolist() == pytest.approx([0.25, 0.75])
    # Inputs: feature 0 present in rows 0, 1; feature 1 in rows 1, 2. Expert 0 chosen in rows 0, 1.
    x = torch.tensor([[[1.0, 0.0], [0.5, 0.5], [0.0, 0.3]]])
    chosen = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]])
    alpha = metrics.activation_given_presence(x, chosen)[0]
    assert alpha[:, 0].tolist() == pytest.approx([1.0, 0.0]) and alpha[:, 1].tolist() == pytest.approx([0.5, 0.5])
    # D^(e): expert 0 holds features 0 and 1 on one axis (D = 1/(1 + 0.25), 0.25/(0.25 + 1));
    # expert 1 holds feature 1 alone (D = 1). Global D_1 = 0.5 * 0.2 + 0.5 * 1.
    D = metrics.global_dimensionality(W, metrics.activation_given_presence(x, chosen))[0]
    assert D.tolist() == pytest.approx([0.8, 0.6], rel=1e-4)


def test_share_of_a_chosen_experts_units_that_fire():
    # Two experts of m = 2 over 2 features. Expert 0's units read +x0 and -x1; expert 1's read -x0, -x1.
    W = torch.tensor([[[[1.0, 0.0], [0.0, -1.0]], [[-1.0, 0.0], [0.0, -1.0]]]])
    x = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])            # input 0: only x0; input 1: only x1
    # Input 0 picks expert 0 (unit 0 fires: 1/2); input 1 picks expert 1 (nothing fires: 0).
    chosen = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    assert metrics.units_on_when_chosen(x, W, chosen).tolist() == [pytest.approx(0.25)]
    # Both inputs pick both experts: 1/2 + 0 + 0 + 0 over four pairs.
    assert metrics.units_on_when_chosen(x, W, torch.ones(1, 2, 2)).tolist() == [pytest.approx(0.125)]


def test_the_headline_metrics_of_a_sweep_by_hand():
    from tasks.superposition.task import headline

    def row(density, fpd, mono, loss, interference):
        return {"config": "e2m2k1", "seed": 0, "density": density, "features_per_dim": fpd,
                "monosemantic_features": mono, "loss": loss, "mean_interference": interference,
                "chosen_units_on": None}
    # listed out of density order: the jump is taken between neighbouring densities, so sorted first
    rows = [row(0.3, 1.6, 2, 0.1, 0.0), row(1.0, 1.2, 1, 0.2, 0.0), row(0.1, 1.0, 0, 0.3, 0.3)]
    special = [{"gate_init": "khot", "usage_clamped": 0.8, "usage_baseline": 0.2},
               {"gate_init": "khot", "usage_clamped": 0.6, "usage_baseline": 0.4}]
    out = headline(rows, special, n_features=4)
    # densities 0.1, 0.3, 1.0 -> features per dimension 1.0, 1.6, 1.2: jumps 0.6 and 0.4 (unsorted: 0.4, 0.2)
    assert out["features_per_dim_max_jump"] == pytest.approx(0.6)
    assert out["features_per_dim_sparsest"] == pytest.approx(1.0)            # density 0.1's
    assert out["features_per_dim"] == pytest.approx(3.8 / 3)
    assert out["monosemantic_fraction"] == pytest.approx((2 / 4 + 1 / 4 + 0) / 3)
    assert out["mean_interference"] == pytest.approx(0.1) and out["loss"] == pytest.approx(0.2)
    assert out["features_per_dim_e2m2k1"] == pytest.approx(3.8 / 3)
    assert "chosen_units_on_e2m2k1" not in out                                # the tied form has none
    assert (out["specialisation_usage_khot"], out["specialisation_baseline_khot"]) == pytest.approx((0.7, 0.3))
