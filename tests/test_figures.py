"""`make figures` draws from results files alone, skips what is absent (saying so), and refuses a
results file of the wrong schema by name."""

import json

import pytest

from analysis.figures import make_figures
from core.errors import BenchError
from core.results import write_result


def _result(model: str, coverage: float, reconstruction: float, l0: float) -> None:
    write_result("chess", model, "cpu", 0, {"coverage": coverage, "reconstruction": reconstruction, "l0": l0,
                                            "val_loss": 0.7}, {}, {}, {"deviations": []})


def test_figures_from_results_alone_and_absent_ones_skipped(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MOEXBENCH_RESULTS", str(tmp_path))
    _result("dense", 0.07, 0.02, 120.0)
    _result("moex", 0.08, 0.03, 70.0)
    written = {p.name for p in make_figures(("cpu",))}
    assert {"chess_coverage_vs_reconstruction_cpu.png", "chess_coverage_vs_reconstruction_cpu.pdf",
            "chess_coverage_vs_l0_cpu.png", "chess_paper_tables_cpu.md", "chess_paper_tables_cpu.csv"} <= written
    caption = (tmp_path / "figures" / "chess_coverage_vs_reconstruction_cpu.txt").read_text()
    assert "chess/dense.json" in caption and "chess/moex.json" in caption
    table = (tmp_path / "figures" / "chess_paper_tables_cpu.md").read_text()
    # cpu counts loss per move: the paper's per-character loss is not set beside it
    assert "| moex | 0.700 | - | 0.080 | 0.428 | 0.030 | 0.840 |" in table
    out = capsys.readouterr().out
    assert "skipped expert_encoders (cpu): no expert analyses" in out
    assert "skipped detection_by_decile (cpu): no language auto-interp results" in out


def test_a_figure_whose_results_are_gone_takes_its_old_files_with_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MOEXBENCH_RESULTS", str(tmp_path))
    figures = tmp_path / "figures"
    figures.mkdir()
    for name in ("expert_encoders_cpu.png", "expert_encoders_cpu.txt", "chess_width_sweep.png",
                 "expert_encoders_cpu_extra.png"):
        (figures / name).write_text("old")
    make_figures(("cpu",))
    assert not (figures / "expert_encoders_cpu.png").exists() and not (figures / "expert_encoders_cpu.txt").exists()
    assert (figures / "chess_width_sweep.png").exists()  # drawn with the short figures, not at cpu
    assert (figures / "expert_encoders_cpu_extra.png").exists()  # another figure's name
    assert "removed" in capsys.readouterr().out


def test_a_results_file_of_another_schema_is_named_in_the_error(tmp_path, monkeypatch):
    monkeypatch.setenv("MOEXBENCH_RESULTS", str(tmp_path))
    (tmp_path / "chess").mkdir()
    (tmp_path / "chess" / "dense.json").write_text(json.dumps({"schema_version": 0}))
    with pytest.raises(BenchError, match=r"chess/dense.json: schema_version 0, expected 1"):
        make_figures(("cpu",))


def test_width_sweep_plots_models_with_two_widths_and_names_the_absent_ones(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MOEXBENCH_RESULTS", str(tmp_path))
    from analysis.figures import width_sweep

    assert "no model has results at two or more widths" in width_sweep("short")
    for preset, coverage in (("short-w128", 0.05), ("short", 0.06), ("short-w384", 0.07)):
        write_result("chess", "dense", preset, 0, {"coverage": coverage, "reconstruction": 0.02,
                                                   "coverage_random_init": 0.04, "reconstruction_random_init": 0.01},
                     {}, {}, {})
    write_result("chess", "moex", "short", 0, {"coverage": 0.06, "reconstruction": 0.02}, {}, {}, {})
    write_result("chess", "moex", "short-w128", 0, {"coverage": 0.05, "reconstruction": 0.02}, {}, {}, {})
    names = {p.name for p in width_sweep("short")}
    assert names == {"chess_width_sweep.png", "chess_width_sweep.pdf", "chess_width_sweep.txt"}
    caption = (tmp_path / "figures" / "chess_width_sweep.txt").read_text()
    assert "Absent: moex at short-w384." in caption and "Dashed: the random-init floor of dense." in caption
    assert "chess/short-w128/dense.json" in caption and "chess/short-w384/dense.json" in caption


def test_coverage_against_reconstruction_plots_the_seed_mean_with_its_spread(tmp_path, monkeypatch):
    from analysis.figures import coverage_vs_reconstruction

    monkeypatch.setenv("MOEXBENCH_RESULTS", str(tmp_path))
    _result("dense", 0.07, 0.02, 120.0)
    for seed, (cov, rec) in ((0, (0.06, 0.02)), (1, (0.08, 0.04)), (2, (0.10, 0.06))):
        write_result("chess", "moex", "cpu", seed, {"coverage": cov, "reconstruction": rec,
                                                    "coverage_random_init": 0.05 + seed / 100,
                                                    "reconstruction_random_init": 0.01}, {}, {}, {})
    coverage_vs_reconstruction("cpu")
    caption = (tmp_path / "figures" / "chess_coverage_vs_reconstruction_cpu.txt").read_text()
    # mean of 0.06/0.08/0.10 is 0.08 with sample std 0.02; of 0.02/0.04/0.06, 0.04 and 0.02; the floor
    # beside it, the mean of its seeds' floors
    assert ("moex: coverage 0.080 ± 0.020, reconstruction 0.040 ± 0.020 (3 seeds); random-init floor 0.060, 0.010"
            in caption)
    assert "dense: coverage 0.070, reconstruction 0.020 (1 seed)" in caption
    assert "chess/seeds/moex.seed2.json" in caption


def test_every_figure_names_its_files_for_the_stale_file_sweep():
    from analysis.figures import FIGURES, STEMS

    assert set(STEMS) == set(FIGURES)


def test_coverage_by_block_draws_each_models_gain_over_its_floor_at_every_scored_block(tmp_path, monkeypatch,
                                                                                        capsys):
    from analysis.figures import coverage_by_block

    monkeypatch.setenv("MOEXBENCH_RESULTS", str(tmp_path))
    assert "has results at two or more blocks" in coverage_by_block("cpu")

    def scored(model, layer, block, coverage, floor, site="mlp", variant=None):
        hook = {"mlp": "mlp.hook_post", "attn": "attn.hook_z"}[site]
        write_result("chess", model, "cpu", 0, {"coverage": coverage, "reconstruction": 0.2,
                                                "coverage_random_init": floor, "reconstruction_random_init": 0.01},
                     {"layer": layer, "site": site}, {"feature_hook": f"blocks.{block}.{hook}"}, {},
                     variant=variant or (None if layer == -3 else f"layer.{layer}"))

    scored("moex", -3, 1, 0.104, 0.095)
    scored("moex", 2, 2, 0.132, 0.092)                 # a layer counted from the front: block 2
    scored("moex", -1, 3, 0.148, 0.083)
    scored("moex", 3, 3, 0.9, 0.1)                     # block 3 again: drawn once, from the first folder
    scored("dense+attn-sae", -3, 1, 0.146, 0.077, site="attn")
    scored("dense+attn-sae", -1, 3, 0.150, 0.070, site="attn")  # its own site at another block: its own line
    scored("dense", -3, 1, 0.130, 0.074)               # one block only: not drawn
    drawn = {p.name for p in coverage_by_block("cpu")}
    assert drawn == {f"chess_coverage_by_block_cpu.{e}" for e in ("png", "pdf", "txt")}
    caption = (tmp_path / "figures" / "chess_coverage_by_block_cpu.txt").read_text()
    assert ("moex: block 1: coverage 0.104 (floor 0.095), reconstruction 0.200 (floor 0.010); "
            "block 2: coverage 0.132 (floor 0.092), reconstruction 0.200 (floor 0.010); "
            "block 3: coverage 0.148 (floor 0.083)") in caption
    assert "dense+attn-sae (attn): block 1: coverage 0.146 (floor 0.077)" in caption
    assert "dense:" not in caption and "0.900" not in caption
    assert "layer.3/moex.json scores block 3 again; drawn from" in capsys.readouterr().out
