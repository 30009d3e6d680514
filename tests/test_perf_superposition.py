"""The superposition part of `make perf`: every training run of a preset timed on its three paths,
the projection from them, and its rows in perf.md."""

from perf.run import _superposition_lines
from perf.superposition import paper_shapes, step_seconds


def test_the_paper_shapes_are_the_presets_runs():
    shapes = paper_shapes("paper")
    assert list(shapes) == ["dense", "e4m5k1", "e10m2k2", "e20m1k5", "specialisation"]
    assert len(shapes["dense"][1]) == 150 and len(shapes["specialisation"][1]) == 100
    assert (shapes["e20m1k5"][0].n_experts, shapes["e20m1k5"][0].top_k) == (20, 5)


def test_step_seconds_times_every_run_on_every_path_and_projects_the_preset():
    out = step_seconds("tiny", repeats=1, warmup=0, batch=16)
    paths = {"straightforward", "fused", "fused_one_draw"}
    assert set(out["seconds"]) == {"dense", "e2m2k1", "e4m1k2", "specialisation"}
    assert all(set(s) == paths and min(s.values()) > 0 for s in out["seconds"].values())
    assert all(set(r) == paths - {"straightforward"} for r in out["speedup"].values())
    hours = out["projected_hours"]["fused"]
    s = out["seconds"]
    sweeps, special = s["e2m2k1"]["fused"] + s["e4m1k2"]["fused"], s["specialisation"]["fused"]
    # the tiny preset trains 150 steps, its specialisation run 150; MoE-X runs the latter once, not twice
    assert abs(hours["moe"] - 150 * (sweeps + 2 * special) / 3600) < 1e-12
    assert abs(hours["moex"] - 150 * (sweeps + special) / 3600) < 1e-12
    text = "\n".join(_superposition_lines({"superposition_step": out}))
    assert "| e4m1k2 |" in text and "| learned-router MoE model |" in text and "| MoE-X (timed on the moe form) model |" in text
    assert _superposition_lines({}) == []
