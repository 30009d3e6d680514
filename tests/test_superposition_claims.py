"""The superposition summary's claims table, judged from hand-made sweep means."""

from tasks.superposition.paper_tables import render


def _stat(details=None, **metrics):
    return {"n_seeds": 1, "mean": metrics, "std": {}, "details": details or []}


def test_claims_are_judged_from_our_numbers():
    stats = {"dense": _stat(features_per_dim=3.0, loss=0.05, features_per_dim_max_jump=1.0,
                            monosemantic_fraction=0.0, mean_interference=1.1),
             "moe-relu": _stat(features_per_dim=1.0, loss=0.09, features_per_dim_max_jump=0.4,
                               monosemantic_fraction=0.0, mean_interference=1.3, features_per_dim_e4m5k1=1.2,
                               loss_e4m5k1=0.09, specialisation_usage_khot=0.8, specialisation_baseline_khot=0.1),
             "moex": _stat(features_per_dim=2.0, loss=0.20, features_per_dim_max_jump=1.5, monosemantic_fraction=0.0,
                           mean_interference=1.4, features_per_dim_e4m5k1=0.9, loss_e4m5k1=0.1)}
    text = "\n".join(render(stats))
    assert "| moe-relu | 1.000 (3.00x) | yes | 0.40 (smaller) | 0.090 | yes, by 0.040 |" in text
    assert "| moex | 2.000 (1.50x) | yes | 1.50 (not smaller) | 0.200 | yes, by 0.150 |" in text
    assert "the dense loss is 0.050 and its lead 0.040 to 0.150" in text
    # no per-expert rows to group: the pooled usage is shown, the claim left unjudged
    assert "| moe-relu | khot | 10% | 80% | - | 67-100%: not judged (no per-expert rows) |" in text
    assert "| e4m5k1 | 1.200 | 0.900 | lower | 0.090 | 0.100 |" in text
    assert "mean interference of represented features is 1.10-1.40" in text
    assert "monosemantic share" not in text  # results without per-configuration shares get no such column
    assert render({"moex": stats["moex"]}) == []  # nothing to compare against without dense


def test_monosemantic_shares_are_tabled_once_any_model_has_one():
    stats = {"dense": _stat(features_per_dim=3.0, loss=0.05, features_per_dim_max_jump=1.0,
                            monosemantic_fraction=0.10, mean_interference=0.5),
             "moe-relu": _stat(features_per_dim=1.0, loss=0.09, features_per_dim_max_jump=0.4,
                               monosemantic_fraction=0.2, mean_interference=0.4, features_per_dim_e10m2k2=1.0,
                               loss_e10m2k2=0.09, monosemantic_fraction_e10m2k2=0.15,
                               monosemantic_fraction_e4m5k1=0.25),
             "moex": _stat(features_per_dim=0.9, loss=0.10, features_per_dim_max_jump=0.5, monosemantic_fraction=0.3,
                           mean_interference=0.3, features_per_dim_e10m2k2=0.9, loss_e10m2k2=0.1,
                           monosemantic_fraction_e10m2k2=0.35, monosemantic_fraction_e4m5k1=0.25)}
    text = "\n".join(render(stats))
    assert "| model | all configurations | e4m5k1 | e10m2k2 |" in text  # by size, not as text
    assert "| dense | 0.100 | - | - |" in text
    assert "| moex | 0.300 | 0.250 | 0.350 |" in text
    assert "| e10m2k2 | 1.000 | 0.900 | lower | 0.090 | 0.100 | 0.150 / 0.350 |" in text
    assert "No model has a monosemantic feature" not in text


def test_silent_experts_chosen_by_the_sparsity_router_are_called_out():
    both = dict(features_per_dim=1.0, loss=0.09, features_per_dim_max_jump=0.4, monosemantic_fraction=0.0,
                mean_interference=1.2, features_per_dim_e20m1k5=0.6, loss_e20m1k5=0.08,
                monosemantic_fraction_e20m1k5=0.0, features_per_dim_e4m5k1=1.3, loss_e4m5k1=0.08,
                monosemantic_fraction_e4m5k1=0.01)
    stats = {"dense": _stat(features_per_dim=1.7, loss=0.07, features_per_dim_max_jump=1.0,
                            monosemantic_fraction=0.0, mean_interference=1.1),
             "moe-relu": _stat(**both, chosen_units_on_e20m1k5=0.8, chosen_units_on_e4m5k1=0.85),
             "moex": _stat(**{**both, "features_per_dim_e20m1k5": 0.36}, chosen_units_on_e20m1k5=0.001,
                           chosen_units_on_e4m5k1=0.7)}
    text = "\n".join(render(stats))
    assert "| e20m1k5 | 0.600 | 0.360 | lower | 0.080 | 0.080 | 0.000 / 0.000 | 0.800 / 0.001 |" in text
    assert "picks silent experts at e20m1k5 (0.1% of their units firing):" in text
    assert "e4m5k1 (" not in text  # 70% firing is not silent
    del stats["moex"]["mean"]["chosen_units_on_e4m5k1"]  # a configuration without the share: no column
    text = "\n".join(render(stats))
    assert "units firing in chosen experts" not in text
    assert "picks silent experts at e20m1k5" in text  # but the share that exists still gets its verdict


def test_specialisation_is_judged_on_the_means_of_experts_grouped_by_monosemantic_features_held():
    """Their 67-100% is the range of group means: pooled, these rows give 60% (one group drags the rest)."""
    def row(init, count, usage):
        return {"gate_init": init, "monosemantic_features": count, "usage_clamped": usage, "usage_baseline": 0.1}
    seed0 = {"specialisation": [row("khot", 1, 0.7), row("khot", 1, 0.8), row("khot", 3, 1.0), row("xavier", 1, 0.2)]}
    seed1 = {"specialisation": [row("khot", 2, 0.1), row("khot", 3, 0.9)]}
    moe = _stat([seed0, seed1], features_per_dim=1.0, loss=0.09, features_per_dim_max_jump=0.4,
                monosemantic_fraction=0.0, mean_interference=1.3, specialisation_usage_khot=0.7,
                specialisation_baseline_khot=0.1, specialisation_usage_xavier=0.2, specialisation_baseline_xavier=0.1)
    dense = _stat(features_per_dim=3.0, loss=0.05, features_per_dim_max_jump=1.0, monosemantic_fraction=0.0,
                  mean_interference=1.1)
    text = "\n".join(render({"dense": dense, "moe": moe}))
    # groups: 1 feature (0.7, 0.8) -> 75%, 2 features (0.1) -> 10%, 3 features (1.0, 0.9) -> 95%
    assert "| moe | khot | 10% | 70% | 10%-95% (3 groups) | 67-100%: no |" in text
    assert "| moe | xavier | 10% | 20% | 20%-20% (1 group) | - |" in text
    seed1["specialisation"][0]["usage_clamped"] = 0.7  # the 2-feature group now at 70%
    text = "\n".join(render({"dense": dense, "moe": moe}))
    assert "| moe | khot | 10% | 70% | 70%-95% (3 groups) | 67-100%: yes |" in text
