"""The superposition task's metrics (docs/superposition.md has the definitions)."""

from core.metrics import Metric, unit_range

METRICS = (
    Metric("features_per_dim", "features per hidden dimension, (1/k) sum_e p_e |W_e|_F^2 / m, averaged over the "
           "sparsity sweep", None, 0.0, headline=True),
    Metric("features_per_dim_sparsest", "features per dimension at the sweep's lowest feature density", None, 0.0,
           headline=True),
    Metric("features_per_dim_max_jump", "the largest change (up or down) of features per dimension between "
           "neighbouring densities", None),
    unit_range("monosemantic_fraction", "share of features represented in some expert (norm >= min_norm) with "
               "interference below the threshold", headline=True),
    Metric("mean_interference", "mean over represented features of sqrt(sum_j (W_hat_i . W_j)^2), j != i",
           False, 0.0, headline=True),
    Metric("loss", "the toy model's mean squared reconstruction error, averaged over the sweep", False, 0.0),
    Metric("specialisation_usage_xavier", "how often the router picks an expert when that expert's monosemantic "
           "features are set to 1 (gate at Xavier init)", None, 0.0, 1.0),
    Metric("specialisation_baseline_xavier", "how often it picks the expert on the same inputs as drawn", None, 0.0, 1.0),
    Metric("specialisation_usage_khot", "the same, gate at k-hot init", None, 0.0, 1.0),
    Metric("specialisation_baseline_khot", "its baseline, inputs as drawn", None, 0.0, 1.0),
    Metric("specialisation_usage_sparsity_router", "the same, MoE-X's sparsity router", None, 0.0, 1.0),
    Metric("specialisation_baseline_sparsity_router", "its baseline, inputs as drawn", None, 0.0, 1.0),
    # One of each per toy configuration (e<experts>m<width>k<top-k>) of the sweep:
    Metric("features_per_dim_*", "features per dimension of one configuration", None, 0.0),
    Metric("loss_*", "reconstruction loss of one configuration", False, 0.0),
    Metric("monosemantic_fraction_*", "monosemantic share of one configuration", None, 0.0, 1.0),
    Metric("chosen_units_on_*", "share of a chosen expert's units that fire, one configuration", None, 0.0, 1.0),
)
