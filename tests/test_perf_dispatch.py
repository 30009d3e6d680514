"""The dispatch profile in `make perf` names where the MoE layer's time goes beside the dense MLP's."""

from bench.perf_dispatch import dispatch_profile


def test_dispatch_profile_puts_both_layers_operators_side_by_side():
    prof = dispatch_profile(steps=1, top=6, d_model=32, tokens=32 * 16)
    ops = prof["self_ms_per_step"]
    assert len(ops) == 6 and all(set(v) == {"ours", "dense"} for v in ops.values())
    assert ops["aten::mm"]["ours"] > 0 and ops["aten::mm"]["dense"] > 0
    # The listed operators are a part of the whole step.
    assert prof["total_ms_per_step"]["ours"] >= sum(v["ours"] for v in ops.values())
