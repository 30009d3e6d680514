"""The chess task's metrics (docs/chess.md has the definitions)."""

from core.metrics import SPLICE_AND_ROUTER, Metric, unit_range

METRICS = (
    unit_range("coverage", "board-state coverage: mean over the 768 masked BSPs of the best feature's F1, at the "
               "best single threshold", headline=True, floor="coverage_random_init", spread=True),
    unit_range("reconstruction", "board reconstruction: micro F1 of the board predicted from features labelled "
               "on the train positions", headline=True, floor="reconstruction_random_init",
               ceiling="probe_f1", spread=True),
    unit_range("probe_f1", "linear-probe ceiling: micro F1 over the 768 masked BSPs of a logistic probe on the "
               "residual stream after the scored block", headline=True, floor="probe_f1_random_init"),
    unit_range("legal_move_rate", "share of greedy next moves that are legal at the evaluation positions",
               headline=True),
    Metric("val_loss", "validation next-token loss (nats per token of the preset's format)", False, 0.0,
           headline=True),
    unit_range("coverage_strategy", "coverage averaged over the 14 strategy functions"),
    unit_range("reconstruction_strategy", "reconstruction averaged over the 14 strategy functions"),
    Metric("l0", "mean number of features > 0 per token", None, 0.0),
    unit_range("alive_fraction", "share of features that fire (> 0) somewhere in the statistics games",
               higher_is_better=None),
    Metric("n_features", "features at the scored site", None, 0.0),
    unit_range("coverage_random_init", "coverage of the same architecture at random init (the floor)",
               higher_is_better=None),
    unit_range("reconstruction_random_init", "reconstruction at random init (the floor)", higher_is_better=None),
    unit_range("probe_f1_random_init", "probe F1 at random init (the floor)", higher_is_better=None),
    unit_range("alive_fraction_random_init", "alive_fraction of the floor's features (its dictionary's, for a "
               "model with one)", higher_is_better=None, added_later=True),
    Metric("floor_mostly_dead", "1 when more than half the floor's features never fire in the statistics games "
           "(a margin over it is inflated unless the model's own features are mostly dead too), else 0",
           None, 0.0, 1.0, added_later=True),
    Metric("router_sparsity_corr", "Pearson r over every (token, expert) pair of the router's score against "
           "the units that expert would fire (> 0 before the activation); MoE-X's should be strongly negative "
           "(moex-centred's score is of its centred input, so it need not be)",
           None, -1.0, 1.0),
    unit_range("expert_load_max", "the busiest expert's share of routed assignments", higher_is_better=None),
    Metric("loss_recovered", "share of the loss gap from zero-ablating the hook the splice replaces (details.splice) that the splice recovers", True),
    Metric("explained_variance", "variance of the site's activations explained by the features' reconstruction",
           True, high=1.0),
    unit_range("dead_fraction", "share of features that never fire on the validation tokens", higher_is_better=False),
    unit_range("coverage_strategy_random_init", "strategy coverage at random init (the floor)", higher_is_better=None),
    unit_range("reconstruction_strategy_random_init", "strategy reconstruction at random init (the floor)",
               higher_is_better=None),
    Metric("perplexity", "exp(ce_clean): validation perplexity per token", False, 1.0),
    Metric("perplexity_splice", "exp(ce_splice): the same with the features spliced in", False, 1.0),
    Metric("l0_fidelity", "mean number of features > 0 per validation token", None, 0.0),
) + SPLICE_AND_ROUTER
