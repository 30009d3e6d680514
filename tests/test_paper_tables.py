"""The summary's layout of our chess numbers beside the MoE-X paper's Tables 1, 3 and 4."""

from tasks.chess.paper_tables import above_floor, gains_table, ordering_finding, render


def _stat(reconstruction: float, std: float | None = None, n: int = 1) -> dict:
    return {"n_seeds": n, "mean": {"coverage": 0.1, "reconstruction": reconstruction},
            "std": {} if std is None else {"coverage": 0.01, "reconstruction": std}}


def test_ordering_is_reported_as_found_not_as_claimed():
    holds = {"moex": _stat(0.3, 0.01, 3), "switch": _stat(0.2, 0.01, 3), "dense": _stat(0.1, 0.01, 3)}
    assert ordering_finding(holds).startswith("The paper's ordering in reconstruction, MoE-X > Switch > dense, holds")
    broken = {"moex": _stat(0.2), "switch": _stat(0.3), "dense": _stat(0.1)}
    text = ordering_finding(broken)
    assert "does not hold here: switch 0.300 > moex 0.200 > dense 0.100" in text
    assert "one seed" in text
    assert ordering_finding({"moex": _stat(0.3)}) is None  # switch and dense missing: no claim either way


def test_tables_show_present_models_with_seed_spread_and_the_right_paper_row():
    lines = "\n".join(render({"moex": _stat(0.25, 0.02, 3), "dense": _stat(0.1)}))
    assert "| moex | - | 0.211 | 0.100 ± 0.010 (3) | 0.428 | 0.250 ± 0.020 (3) | 0.840 |" in lines  # Table 1
    assert "| moex | 0.100 ± 0.010 (3) | 0.398 | 0.250 ± 0.020 (3) | 0.657 |" in lines  # Table 4: MoE-X scratch
    assert "| dense | - | 0.213 | 0.100 | 0.356 | 0.100 | 0.608 |" in lines  # one seed: no spread shown
    assert "switch-relu" in lines and "dense-continued" not in lines
    assert render({"dense+sae:gated": _stat(0.1)}) == []


def test_differences_above_the_floor_subtract_each_seeds_own_floor():
    values = {"coverage": [0.15, 0.13, 0.14], "coverage_random_init": [0.10, 0.09, 0.08]}
    assert [round(g, 6) for g in above_floor(values, "coverage")] == [0.05, 0.04, 0.06]
    assert above_floor({"coverage": [0.1]}, "coverage") is None  # no floor: no row

    def seeds(cov, floor):
        return {"n_seeds": 3, "mean": {}, "std": {},
                "values": {"coverage": cov, "coverage_random_init": floor}}

    # moex covers more than dense, but its floor is higher by more: above the floor it is behind
    lines = render({"moex": seeds([0.15, 0.16, 0.17], [0.12, 0.12, 0.12]),
                    "dense": seeds([0.13, 0.14, 0.15], [0.07, 0.07, 0.07])})
    assert "| coverage | moex - dense | 3 / 3 | +0.020 |" in "\n".join(lines)
    assert "| coverage above floor | moex - dense | 3 / 3 | -0.030 |" in "\n".join(lines)
    # a pair whose one side has no floor is said, not dropped
    lines = render({"moex": seeds([0.15, 0.16, 0.17], [0.12, 0.12, 0.12]),
                    "dense": {"n_seeds": 3, "mean": {}, "std": {}, "values": {"coverage": [0.13, 0.14, 0.15]}}})
    assert "| coverage above floor | moex - dense | 3 / 3 | - | - | - | no random-init floor: untested | - |" in lines


def test_gains_over_the_floor_are_averaged_per_seed_and_ranked():
    def seeds(cov, cov_floor, rec, rec_floor):
        return {"values": {"coverage": cov, "coverage_random_init": cov_floor,
                           "reconstruction": rec, "reconstruction_random_init": rec_floor}}

    lines = gains_table({
        # gains 0.05, 0.04, 0.06 -> mean 0.05, sample std 0.01; reconstruction gains 0.2, 0.1, 0.3 -> 0.2 ± 0.1
        "dense": seeds([0.15, 0.13, 0.14], [0.10, 0.09, 0.08], [0.3, 0.2, 0.4], [0.1, 0.1, 0.1]),
        "moex": seeds([0.17], [0.10], [0.12], [0.15]),           # one seed: no spread; below its floor
        "dense+sae:gated": {"values": {"coverage": [0.2]}},       # no floor: no row
    })
    assert lines[-4:] == ["|---|---|---|", "| moex | +0.070 | -0.030 |",
                          "| dense | +0.050 ± 0.010 (3) | +0.200 ± 0.100 (3) |", ""]
    assert gains_table({"dense": {"values": {"coverage": [0.1]}}}) == []
    flagged = seeds([0.15], [0.03], [0.2], [0.01])
    flagged["flags"] = " [router collapsed: 1 of 2 seeds]"   # as bench/report._seed_stats words them
    row = gains_table({"moe": flagged})[-2]
    assert row == "| moe [router collapsed: 1 of 2 seeds] | +0.120 | +0.190 |"


def test_language_table_2_and_the_detection_claim_from_our_numbers():
    from tasks.language.paper_tables import render as render_language

    def stat(perplexity, splice, detection, low, high):
        return {"n_seeds": 1, "std": {}, "mean": {"perplexity": perplexity, "perplexity_splice": splice,
                                                   "detection": detection, "detection_ci_low": low,
                                                   "detection_ci_high": high}}

    stats = {"dense": stat(30.0, 30.0, 0.6, 0.58, 0.62), "dense+sae": stat(30.0, 41.5, 0.7, 0.68, 0.72),
             "moex": stat(28.0, 28.0, 0.65, 0.63, 0.67)}
    text = "\n".join(render_language(stats))
    assert "| dense+sae | 30.00 | 41.50 | GPT-2 Small with its SAE spliced in: 31.60 / 38.21 / 55.33 / 49.16 |" in text
    assert ("moex 0.650 [0.630, 0.670], dense+sae 0.700 [0.680, 0.720], dense 0.600 [0.580, 0.620]. MoE-X against "
            "the SAE: CI below the SAE's (does not match it); both above dense neurons: yes") in text
    stats["moex"] = stat(28.0, 28.0, 0.69, 0.61, 0.71)  # below the SAE's score, but the CIs overlap
    assert ("the SAE: CIs overlap (not distinguishable at this size); both above dense neurons: no"
            in "\n".join(render_language(stats)))
    stats["moex"] = stat(28.0, 28.0, 0.80, 0.75, 0.85)
    assert "the SAE: CI above the SAE's (beats it)" in "\n".join(render_language(stats))
    stats["moex"]["mean"].update(detection_n_features=90, autointerp_features_sampled=200)
    assert "moex 0.800 [0.750, 0.850] (90 of 200 scored), dense+sae 0.700" in "\n".join(render_language(stats))
    assert render_language({"dense+sae:gated": stats["dense"]}) == []


def test_neighbouring_methods_are_tested_against_moex_in_their_own_table():
    def seeds(cov, floor):
        return {"n_seeds": 2, "mean": {}, "std": {}, "values": {"coverage": cov, "coverage_random_init": floor}}

    lines = render({"moex": seeds([0.10, 0.12], [0.09, 0.09]), "dense+transcoder": seeds([0.16, 0.17], [0.08, 0.08]),
                    "dense": seeds([0.13, 0.14], [0.07, 0.07]), "dense-topk": seeds([0.15, 0.15], [0.07, 0.08])})
    claimed, neighbours = "\n".join(lines).split("The paper's claims:")[1].split("MoE-X's units against the neighbouring")
    assert "| coverage | moex - dense |" in claimed and "dense+transcoder" not in claimed
    assert "| coverage | moex - dense+transcoder | 2 / 2 | -0.055 |" in neighbours
    assert "| coverage above floor | dense-topk - dense | 2 / 2 | +0.010 |" in neighbours
    assert "moex - dense |" not in neighbours and "dense+attn-sae" not in neighbours  # absent: no row
