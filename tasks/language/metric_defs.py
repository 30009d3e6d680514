"""The language task's metrics (docs/language.md has the definitions)."""

from core.metrics import SPLICE_AND_ROUTER, Metric, unit_range

METRICS = (
    unit_range("detection", "auto-interp detection: mean balanced accuracy over scored features of telling "
               "activating from non-activating windows from the explanation", headline=True, spread=True,
               floor="detection_random_init"),
    unit_range("fuzzing", "auto-interp fuzzing: mean balanced accuracy of telling correctly from wrongly "
               "highlighted tokens", headline=True, spread=True, floor="fuzzing_random_init"),
    Metric("loss_recovered", "share of the loss gap from zero-ablating the hook the splice replaces (details.splice) that the splice recovers", True,
           headline=True),
    Metric("perplexity", "validation perplexity of the model", False, 1.0, headline=True, spread=True),
    Metric("perplexity_splice", "validation perplexity with the features' reconstruction spliced in", False, 1.0),
    Metric("explained_variance", "variance of the site's activations explained by the reconstruction", True,
           high=1.0),
    Metric("l0_fidelity", "mean number of features > 0 per token on the validation text", None, 0.0),
    unit_range("dead_fraction", "share of features that never fire on the validation text", higher_is_better=False),
    unit_range("detection_ci_low", "detection's bootstrap 95% interval, low end"),
    unit_range("detection_ci_high", "detection's bootstrap 95% interval, high end"),
    unit_range("fuzzing_ci_low", "fuzzing's bootstrap 95% interval, low end"),
    unit_range("fuzzing_ci_high", "fuzzing's bootstrap 95% interval, high end"),
    unit_range("firing_density", "mean share of tokens on which a scored feature fires", higher_is_better=None),
    unit_range("firing_density_sampled", "the same over every sampled feature, skipped ones included",
               higher_is_better=None),
    Metric("autointerp_features_sampled", "features drawn for auto-interp", None, 0.0),
    Metric("autointerp_features_skipped", "sampled features without enough activating or negative windows",
           None, 0.0),
    Metric("autointerp_explanation_failures", "scored features whose explanation could not be parsed", False, 0.0),
    unit_range("detection_parse_failure_rate", "share of detection answers that could not be parsed",
               higher_is_better=False),
    Metric("router_sparsity_corr", "Pearson r over every (token, expert) pair of the router's score against "
           "the units that expert would fire (> 0 before the activation); MoE-X's should be strongly negative",
           None, -1.0, 1.0),
    Metric("n_features", "features at the scored site", None, 0.0),
    Metric("val_loss", "validation next-token loss (nats per token)", False, 0.0),
    Metric("autointerp_skipped_few_activating", "sampled features with too few activating windows", None, 0.0),
    Metric("autointerp_skipped_few_negatives", "sampled features with too few windows where they never fire",
           None, 0.0),
    Metric("autointerp_weakest_negative_features", "scored features whose negatives are their weakest windows "
           "(negatives=weakest) rather than verified silent ones", None, 0.0),
    Metric("detection_n_features", "features with a detection score", None, 0.0),
    Metric("fuzzing_n_features", "features with a fuzzing score", None, 0.0),
    unit_range("fuzzing_parse_failure_rate", "share of fuzzing answers that could not be parsed",
               higher_is_better=False),
    unit_range("detection_random_init", "detection of the same architecture at random init, the same features "
               "sampled and scored the same way (the floor)", higher_is_better=None),
    unit_range("fuzzing_random_init", "fuzzing at random init (the floor)", higher_is_better=None),
    Metric("detection_n_features_random_init", "features the floor could score (details.random_init counts the "
           "rest: too few or too many windows where they fire, answers that did not parse)", None, 0.0),
    unit_range("expert_load_max", "the busiest expert's share of routed assignments", higher_is_better=None),
) + SPLICE_AND_ROUTER
