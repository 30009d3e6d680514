"""The expert-load reading counts unused experts from a result's stored loads, in every folder and seed."""

import json

from analysis.expert_loads import rows, unused_experts
from core.results import write_result


def test_an_expert_under_a_quarter_of_its_even_share_is_unused():
    # 8 experts: an even share is 0.125, a quarter of it 0.03125
    assert unused_experts([0.3, 0.3, 0.3, 0.03125, 0.03, 0.0395, 0.0, 0.0]) == 3


def test_every_moe_result_of_the_preset_is_read_and_other_folders_are_skipped(tmp_path, monkeypatch):
    monkeypatch.setenv("MOEXBENCH_RESULTS", str(tmp_path))
    even, lopsided = [0.125] * 8, [0.5, 0.45, 0.05, 0.0, 0.0, 0.0, 0.0, 0.0]
    for seed, variant, load in ((0, None, even), (2, None, lopsided), (0, "layer.-1", lopsided)):
        write_result("chess", "moex", "cpu", seed, {"dead_fraction": 0.25}, {}, {"model": {"expert_load": load, "top_k": 2}},
                     {}, variant=variant)
    write_result("chess", "dense", "cpu", 0, {"dead_fraction": 0.1}, {}, {}, {})
    # a newer result's own count is taken as stored
    write_result("chess", "moex", "cpu", 1, {"dead_fraction": 0.25}, {},
                 {"model": {"expert_load": lopsided, "top_k": 2, "experts_unused": 4}}, {})
    write_result("chess", "moex", "short", 0, {"dead_fraction": 0.5}, {}, {"model": {"expert_load": even, "top_k": 2}}, {})
    (tmp_path / "chess" / "experts").mkdir()
    (tmp_path / "chess" / "experts" / "moex.json").write_text(json.dumps({"points": []}))
    assert rows("chess", "cpu") == [(".", "moex", 0, 0, 0.25, 0.25), (".", "moex", 1, 4, 0.95, 0.25),
                                    (".", "moex", 2, 5, 0.95, 0.25), ("layer.-1", "moex", 0, 5, 0.95, 0.25)]
    assert rows("chess", "short") == [(".", "moex", 0, 0, 0.25, 0.5)]
