import json

import pytest
import torch

from core.errors import BenchError
from core.results import load_result, result_path, write_result


def test_result_paths_keep_other_presets_and_seeds_away_from_the_committed_file():
    assert result_path("chess", "dense", "cpu", 0).parts[-2:] == ("chess", "dense.json")
    assert result_path("chess", "dense", "tiny", 0).parts[-3:] == ("chess", "tiny", "dense.json")
    assert result_path("chess", "dense", "cpu", 2).parts[-3:] == ("chess", "seeds", "dense.seed2.json")
    assert result_path("language", "dense", "cpu", 0, "llm").parts[-3:] == ("language", "llm", "dense.json")
    assert result_path("language", "dense", "tiny", 1, "llm").parts[-5:] == \
        ("language", "tiny", "llm", "seeds", "dense.seed1.json")


def test_a_non_finite_metric_writes_nothing():
    path = result_path("unit", "m", "cpu", 0)
    with pytest.raises(BenchError, match="metric 'coverage' is nan"):
        write_result("unit", "m", "cpu", 0, {"coverage": float("nan")}, {}, {}, {})
    assert not path.exists() and not path.with_name(path.name + ".tmp").exists()


def test_written_result_round_trips_and_a_wrong_schema_is_named(tmp_path):
    path = write_result("unit", "m", "cpu", 0, {"coverage": 0.5, "n_features": 3}, {"layer": -3}, {}, {"x": 1})
    record = load_result(path)
    assert record["metrics"] == {"coverage": 0.5, "n_features": 3}
    assert set(record["provenance"]) >= {"git_sha", "versions", "seed", "created", "x"}
    assert record["provenance"]["torch_threads"] == torch.get_num_threads()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**record, "schema_version": 99}))
    with pytest.raises(BenchError, match="schema_version 99, expected 1"):
        load_result(bad)


def test_fingerprints_see_every_edit_and_skip_what_is_not_a_module(tmp_path):
    from core import code_state

    for package in code_state.PACKAGES:
        (tmp_path / package).mkdir()
    (tmp_path / "tasks" / "a.py").write_text("x = 1\n")
    before = code_state.fingerprints(tmp_path)
    assert before == code_state.fingerprints(tmp_path) and list(before) == ["tasks/a.py"]
    (tmp_path / "tasks" / "a.py").write_text("x = 2\n")
    assert code_state.fingerprints(tmp_path)["tasks/a.py"] != before["tasks/a.py"]
    (tmp_path / "tasks" / ".#a.py").symlink_to(tmp_path / "nowhere")  # an editor's lock file is not a module
    assert list(code_state.fingerprints(tmp_path)) == ["tasks/a.py"]


def test_only_an_edit_to_a_loaded_module_marks_the_result(monkeypatch, capsys):
    from core import code_state

    monkeypatch.setattr(code_state, "LOADED_ELSEWHERE", set())  # side processes of earlier tests' runs
    now = code_state.fingerprints()
    loaded = code_state.loaded_files()
    assert "core/results.py" in loaded
    never_loaded = sorted(set(now) - loaded)[0]
    # An edit to a module this process never imported: what it computed is what HEAD says.
    assert not code_state.changed_since_start({**now, never_loaded: "an older version"})
    # An edit to one it runs, a module added since it began, one that could not be read: all a mix.
    assert code_state.changed_since_start({**now, "core/results.py": "an older version"})
    assert code_state.changed_since_start({f: h for f, h in now.items() if f != "core/results.py"})
    assert code_state.changed_since_start({**now, "core/results.py": code_state.UNREADABLE})
    # a folder that vanishes while it is listed: a change, not a crash at the end of a run
    def vanishing(self, pattern):
        raise FileNotFoundError(f"{self} went away")

    with monkeypatch.context() as patched:
        patched.setattr(type(code_state.ROOT), "rglob", vanishing)
        assert code_state.fingerprints() is None and code_state.changed_since_start(now)
    monkeypatch.setattr(code_state, "AT_START", {**now, "core/results.py": "an older version"})
    record = load_result(write_result("unit", "m", "cpu", 0, {"coverage": 0.5}, {}, {}, {}))
    assert record["provenance"]["git_sha"].endswith("-code-changed-during-run")
    assert "our source changed while this run was under way" in capsys.readouterr().err


def test_a_process_whose_source_did_not_change_writes_a_plain_sha():
    import subprocess
    import sys

    from core.paths import ROOT

    out = subprocess.run([sys.executable, "-c", "from core.results import git_sha; print(git_sha())"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "code-changed" not in out.stdout, out.stdout + out.stderr


def test_summary_shows_mean_and_spread_over_seeds():
    import csv

    from bench.report import write_summary
    from core.results import task_dir

    for seed, cov in ((0, 0.2), (1, 0.4), (2, 0.6)):
        write_result("chess", "m", "cpu", seed, {"coverage": cov, "reconstruction": 0.5}, {}, {}, {})
    write_summary("chess", "cpu")
    rows = list(csv.DictReader((task_dir("chess") / "summary.csv").open()))
    row = next(r for r in rows if r["model"] == "m")
    assert row["n_seeds"] == "3" and float(row["coverage"]) == 0.2
    assert float(row["coverage_mean"]) == pytest.approx(0.4) and float(row["coverage_std"]) == pytest.approx(0.2)
    assert float(row["reconstruction_std"]) == 0.0
    assert "| m | cpu | 3 |" in (task_dir("chess") / "summary.md").read_text()


def test_a_metric_added_later_is_left_out_of_seed_statistics_while_an_older_seed_lacks_it():
    from bench.report import _seed_stats

    old = {"task": "chess", "model": "m", "metrics": {"coverage": 0.2}}
    new = {"task": "chess", "model": "m", "metrics": {"coverage": 0.4, "floor_mostly_dead": 1.0,
                                                      "alive_fraction_random_init": 0.01}}
    stats = _seed_stats([old, new])
    assert set(stats["values"]) == {"coverage"} and stats["mean"]["coverage"] == pytest.approx(0.3)
    assert stats["flags"] == " [floor mostly dead: 1 of 1 measured seeds]"  # the flag still reaches the tables
    assert _seed_stats([new, new])["values"]["floor_mostly_dead"] == [1.0, 1.0]
    with pytest.raises(BenchError, match="metric 'l0' is missing while another seed of m has it"):
        _seed_stats([old, {**new, "metrics": {**new["metrics"], "l0": 3.0}}])  # not declared added_later


def test_a_model_scored_with_other_measurement_settings_is_marked_in_the_headline():
    from bench.report import write_summary
    from core.results import task_dir

    write_result("language", "a", "cpu", 0, {"detection": 0.6}, {"negatives": "verified"}, {}, {})
    write_result("language", "b", "cpu", 0, {"detection": 0.5}, {"negatives": "weakest"}, {}, {})
    write_summary("language", "cpu")
    text = (task_dir("language") / "summary.md").read_text()
    assert "| a | 1 | 0.600 (no floor) |" in text and "| b (negatives=weakest) | 1 | 0.500 (no floor) |" in text
    # detection has a floor in this task: a result scored without it says so, in the cell and above the table
    assert "(`no floor`: the floor scored no feature" in text.split("| model |")[0]


def test_a_variant_summary_reads_its_own_folder_only():
    from bench.report import write_summary
    from core.results import result_dir

    write_result("unitv", "m", "cpu", 0, {"detection": 0.9}, {}, {}, {})
    write_result("unitv", "m", "cpu", 0, {"detection": 0.6}, {}, {}, {}, variant="llm")
    write_summary("unitv", "cpu", "llm")
    text = (result_dir("unitv", "cpu", "llm") / "summary.md").read_text()
    assert "(cpu preset, llm)" in text and "0.6" in text and "0.9" not in text


def test_curve_files_beside_results_are_not_read_as_results(tmp_path):
    from core.results import result_files

    (tmp_path / "dense.json").write_text("{}")
    (tmp_path / "training_curve_dense.json").write_text("{}")
    assert [p.name for p in result_files(tmp_path)] == ["dense.json"]


def test_a_later_seed_refreshes_the_summary_but_not_the_figures():
    from types import SimpleNamespace

    from bench.runner import _report
    from core.results import task_dir

    drawn = []
    task = SimpleNamespace(name="unitseeds", figures=lambda preset, variant: drawn.append(preset))
    write_result("unitseeds", "m", "cpu", 0, {"coverage": 0.2}, {}, {}, {})
    _report(task, "cpu", 0)
    write_result("unitseeds", "m", "cpu", 1, {"coverage": 0.4}, {}, {}, {})
    _report(task, "cpu", 1)
    assert "| m | cpu | 2 |" in (task_dir("unitseeds") / "summary.md").read_text()
    assert drawn == ["cpu"]  # figures are drawn from seed 0, once


def test_the_summary_names_results_whose_checkpoints_were_trained_off_this_cpu():
    from bench.report import write_summary
    from core.results import task_dir

    gpu = "cuda (NVIDIA H100 80GB HBM3), torch 2.11.0+cu130"
    cpu = "cpu (x86_64, 1 thread(s)), torch 2.13.0+cpu"
    write_result("unitdev", "m", "cpu", 0, {"coverage": 0.2}, {}, {}, {"trained": {"device": cpu}})
    write_result("unitdev", "m", "cpu", 1, {"coverage": 0.3}, {}, {}, {"trained": {"device": gpu}})
    write_result("unitdev", "m", "cpu", 2, {"coverage": 0.4}, {}, {}, {"trained": {}})  # before the field: cpu
    write_summary("unitdev", "cpu")
    text = (task_dir("unitdev") / "summary.md").read_text()
    lines = [line for line in text.splitlines() if line.startswith("Trained on")]
    assert lines == [f"Trained on {gpu}, same recipe and data: m seed 1. Every other checkpoint was trained on "
                     "this machine's CPU."]


def test_a_metric_outside_its_declared_range_is_never_written(tmp_path, monkeypatch):
    from core.errors import BenchError
    from core.results import write_result

    monkeypatch.setenv("MOEXBENCH_RESULTS", str(tmp_path))
    with pytest.raises(BenchError, match=r"metric 'coverage' of task chess: 1\.5 is outside \[0, 1\]"):
        write_result("chess", "dense", "tiny", 0, {"coverage": 1.5}, {}, {}, {})
    assert not list(tmp_path.rglob("*.json"))


def test_the_compact_tables_keep_floor_ceiling_spread_and_paper_beside_each_score():
    from bench.headline import models_table, run_table

    seeds = [{"metrics": {"coverage": 0.3, "coverage_random_init": 0.1, "reconstruction": 0.2}},
             {"metrics": {"coverage": 0.1, "coverage_random_init": 0.05, "reconstruction": 0.2}}]
    table = models_table("chess", {"moex": seeds}, {"moex": {"coverage": 0.428, "reconstruction": 0.84}})
    assert table[0].startswith("| model | seeds | coverage | reconstruction | probe_f1 |")
    # reconstruction was scored without its floor: said; probe_f1 was not scored at all: a dash
    assert table[2] == "| moex | 2 | 0.200 ± 0.141 (0.075) | 0.200 ± 0.000 (no floor) | - | - | - | 0.428 / 0.840 |"
    dead = [{"metrics": {"coverage": 0.05, "mostly_dead": 1.0, "router_collapsed": 0.0}},
            {"metrics": {"coverage": 0.07, "mostly_dead": 1.0, "router_collapsed": 1.0}}]
    flagged = models_table("chess", {"x": dead}, {})[2]
    assert flagged.startswith("| x [mostly dead; router collapsed: 1 of 2 seeds] | 2 |")
    dead_floor = [{"metrics": {"coverage": 0.05, "floor_mostly_dead": 1.0}},
                  {"metrics": {"coverage": 0.07, "floor_mostly_dead": 0.0}}]
    assert models_table("chess", {"x": dead_floor}, {})[2].startswith("| x [floor mostly dead: 1 of 2 seeds] | 2 |")
    # a seed scored before the flag existed did not measure it
    dead_floor[1]["metrics"].pop("floor_mostly_dead")
    flagged = models_table("chess", {"x": dead_floor}, {})[2]
    assert flagged.startswith("| x [floor mostly dead: 1 of 1 measured seeds] |")
    # features dropped from detection for an unparsed explanation, summed over the seeds that counted them
    llm = [{"metrics": {"detection": 0.5, "autointerp_explanation_failures": 7, "autointerp_features_sampled": 20}},
           {"metrics": {"detection": 0.5, "autointerp_explanation_failures": 0, "autointerp_features_sampled": 20}}]
    assert models_table("language", {"x": llm}, {})[2].startswith(
        "| x [7 of 40 sampled features without a parseable explanation] | 2 |")
    llm[0]["metrics"]["autointerp_explanation_failures"] = 0
    assert models_table("language", {"x": llm}, {})[2].startswith("| x | 2 |")
    # a floor that is a mean over under half the sample (1 + 8 of 40 here) says so; half of it is enough
    llm[0]["metrics"].update(detection_n_features_random_init=1, detection_random_init=0.52)
    llm[1]["metrics"].update(detection_n_features_random_init=8, detection_random_init=0.5)
    assert models_table("language", {"x": llm}, {})[2] == \
        "| x [floor over 9 of 40 sampled features] | 2 | 0.500 ± 0.000 (0.510) | - | - | - |"
    llm[1]["metrics"]["detection_n_features_random_init"] = 19
    assert models_table("language", {"x": llm}, {})[2].startswith("| x | 2 |")
    for seed in llm:
        seed["metrics"].update(detection_n_features_random_init=0)
        seed["metrics"].pop("detection_random_init")
    assert models_table("language", {"x": llm}, {})[2] == \
        "| x [floor scored none of 40 sampled features] | 2 | 0.500 ± 0.000 (no floor) | - | - | - |"
    run = run_table("chess", {"reconstruction": 0.3, "reconstruction_random_init": 0.01, "probe_f1": 0.6}, {})
    assert "| reconstruction | 0.300 | 0.010 | 0.600 (probe_f1) | - |" in run


def test_the_papers_per_character_loss_is_not_set_beside_a_per_move_loss():
    from bench.report import paper_numbers

    assert paper_numbers("chess", "paper")["moex"]["val_loss"] == 0.211  # characters, as the paper's
    moves = paper_numbers("chess", "cpu")["moex"]
    assert "val_loss" not in moves and moves["coverage"] == 0.428
    assert paper_numbers("superposition", "cpu") == {}


def test_a_language_run_at_another_layer_or_site_or_without_the_floor_goes_to_its_own_folder():
    from core.task_config import apply_overrides
    from tasks.language.config import LanguageConfig
    from tasks.language.task import LanguageTask

    variant = LanguageTask.result_variant
    assert variant(LanguageConfig()) is None
    assert variant(apply_overrides(LanguageConfig(), ["n_features=20", "negatives=weakest"])) is None
    assert variant(apply_overrides(LanguageConfig(), ["layer=7"])) == "layer.7"
    assert variant(apply_overrides(LanguageConfig(), ["site=resid", "backend=llm"])) == "llm_site.resid"
    assert variant(apply_overrides(LanguageConfig(), ["backend=llm"])) == "llm"
    # without the floor it lacks metrics the default run has; regress's checks run so, and read that folder
    assert variant(apply_overrides(LanguageConfig(), ["random_floor=false", "backend=llm"])) == "llm_random_floor.False"
    from bench.regress import LANGUAGE_EVAL, Check, _variant
    assert _variant(Check("language", "dense", "cpu", LANGUAGE_EVAL)) == "random_floor.False"
    # A model whose own default is another site (an attention SAE) is at its default there.
    attn_default = apply_overrides(LanguageConfig(), ["site=attn"])
    assert variant(attn_default, baseline=attn_default) is None


def test_a_chess_run_with_other_settings_goes_to_its_own_folder_and_regress_reads_it_there():
    from bench.regress import CHESS_EVAL, Check, _variant
    from core.task_config import apply_overrides
    from tasks.chess.config import ChessConfig
    from tasks.chess.task import ChessTask

    assert ChessTask.result_variant(ChessConfig()) is None
    assert ChessTask.result_variant(apply_overrides(ChessConfig(), ["probe_games=40", "probe_layers=all"])) is None
    assert ChessTask.result_variant(apply_overrides(ChessConfig(), ["layer=-2", "probe_layers=all"])) == "layer.-2"
    assert ChessTask.result_variant(apply_overrides(ChessConfig(), ["site=resid", "layer=-1"])) == \
        "layer.-1_site.resid"
    assert ChessTask.result_variant(apply_overrides(ChessConfig(), ["legal_move_games=5"])) is None
    assert _variant(Check("chess", "dense", "cpu", CHESS_EVAL, {})) == "random_floor.False_legal_move_games.0"
    assert _variant(Check("chess", "dense", "cpu", ("layer=-2",), {})) == "layer.-2"
    assert result_path("chess", "dense", "cpu", 0, "layer.-2").parts[-3:] == ("chess", "layer.-2", "dense.json")


def test_a_block_counted_from_the_start_is_filed_as_counted_from_the_end():
    from bench import registry
    from bench.run_target import model_depth, results_variant
    from core.task_config import apply_overrides, layer_from_end
    from tasks.chess.config import ChessConfig
    from tasks.chess.task import ChessTask

    def filed(args, depth=4):
        return layer_from_end(apply_overrides(ChessConfig(), args), depth)

    assert filed(["layer=3"]).layer == -1 and filed(["layer=0"]).layer == -4
    assert filed(["layer=1"]) == ChessConfig()          # block 1 of 4 is the default -3: the default run
    assert filed(["layer=-2"]).layer == -2              # already from the end
    assert filed(["layer=4"]).layer == 4                # a block the model lacks: left for the refusal to name
    no_layer = object()
    assert layer_from_end(no_layer, 4) is no_layer      # a config without a layer passes through
    # the depth comes from the preset's shape, for dictionaries from the model under them
    assert model_depth(registry.model_adapter("moex"), ChessTask, "cpu") == 4
    assert model_depth(registry.model_adapter("dense+sae"), ChessTask, "cpu") == 4
    dense = registry.model_adapter("dense")
    assert results_variant(ChessTask, filed(["layer=3"]), dense) == results_variant(
        ChessTask, filed(["layer=-1"]), dense) == "layer.-1"


def test_no_architecture_changes_the_number_of_blocks():
    """The refusals before any work read a model's depth from its preset (bench/run_target.model_depth)."""
    from bench import registry
    from core.errors import BenchError
    from tasks.chess.task import ChessTask
    from tasks.language.task import LanguageTask

    checked = 0
    for task in (ChessTask, LanguageTask):
        for preset in task.presets:
            try:
                dense = task.dense_config(preset)
            except BenchError:  # a preset whose tokenizer files are absent here
                continue
            for name in registry.MODELS:
                adapter = registry.model_adapter(name)
                if not adapter.base_model:
                    assert adapter.model_config(dense).n_layers == dense.n_layers, (name, task.name, preset)
                    checked += 1
    assert checked > 20


def test_a_run_and_regress_file_layer_3_of_4_blocks_as_layer_minus_1(monkeypatch):
    """Through the bench's own entry (stopped at its first check, before any work) and regress's reading."""
    from bench import registry, run_target, runner
    from bench.regress import Check, _variant
    from core.task_config import apply_overrides
    from tasks.chess.config import ChessConfig
    from tasks.chess.task import ChessTask

    class Stop(Exception):
        pass

    seen = {}

    def first_check(target, config):
        seen.update(target=target, layer=config.layer)
        raise Stop
    monkeypatch.setattr(run_target, "refuse_other_measurement", first_check)
    with pytest.raises(Stop):
        runner.run_bench(registry.model_adapter("moex"), ChessTask, apply_overrides(ChessConfig(), ["layer=3"]),
                         "tiny", 0, "cpu")
    assert seen["layer"] == -1 and seen["target"].parts[-2:] == ("layer.-1", "moex.json")
    assert _variant(Check("chess", "moex", "tiny", ("layer=3",), {})) == "layer.-1"


def test_a_floor_with_more_than_half_its_features_dead_is_flagged_and_said(capsys):
    from tasks.chess.task import _floor_mostly_dead

    assert _floor_mostly_dead("dense+sae:jumprelu", alive=0.01) == 1.0
    assert "99% of the features of dense+sae:jumprelu's random-init floor never fire" in capsys.readouterr().out
    # exactly half dead is not "more than half", as for the trained model's mostly_dead
    assert _floor_mostly_dead("x", alive=0.5) == 0.0 and _floor_mostly_dead("x", alive=0.9) == 0.0
    assert capsys.readouterr().out == ""


def test_checking_a_folder_without_creating_it_leaves_nothing_and_sees_what_blocks_it(tmp_path):
    from core.results import ensure_writable

    ensure_writable(tmp_path / "a" / "b", create=False)
    assert list(tmp_path.iterdir()) == []                      # nothing made, no probe left behind
    (tmp_path / "file").write_text("")
    (tmp_path / "dangling").symlink_to(tmp_path / "missing")   # exists() is False, yet mkdir fails on it
    for blocker in ("file", "dangling"):
        with pytest.raises(BenchError, match=f"cannot write to {tmp_path / blocker}/x .*{blocker}: a file or a broken link"):
            ensure_writable(tmp_path / blocker / "x", create=False)


def test_a_read_only_result_or_a_folder_in_its_place_is_refused_in_one_line(tmp_path):
    from core.results import load_result, refuse_read_only

    kept = tmp_path / "dense.json"
    kept.write_text("{}")
    refuse_read_only(kept)  # writable: scored again as usual
    refuse_read_only(tmp_path / "absent.json")
    kept.chmod(0o444)
    with pytest.raises(BenchError, match=r"dense\.json is read-only, so it is kept; make it writable"):
        refuse_read_only(kept)
    folder = tmp_path / "moex.json"
    folder.mkdir()
    with pytest.raises(BenchError,
                       match=r"moex\.json cannot be read as a result \(Is a directory\); delete or move it"):
        load_result(folder)
