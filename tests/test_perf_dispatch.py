"""The dispatch profile in `make perf` names where the MoE layer's time goes beside the dense MLP's."""

from perf.dispatch import dispatch_profile


def test_dispatch_profile_puts_both_layers_operators_side_by_side():
    prof = dispatch_profile(steps=1, top=40, d_model=32, tokens=32 * 16)
    ops = prof["self_ms_per_step"]
    assert len(ops) == 40 and all(set(v) == {"ours", "dense"} for v in ops.values())
    # Ordered by the larger of the two columns, as the perf report reads it.
    larger = [max(v.values()) for v in ops.values()]
    assert larger == sorted(larger, reverse=True)
    # Both layers multiply; only the MoE layer routes: its top-k choice and its scatter back into the
    # output are operators the dense MLP never calls.
    assert ops["aten::mm"]["ours"] > 0 and ops["aten::mm"]["dense"] > 0
    for routing_op in ("aten::topk", "aten::index_add_"):
        assert ops[routing_op]["ours"] > 0 and ops[routing_op]["dense"] == 0, routing_op
