"""Every committed summary is what `make report` writes from the committed results: a change to the
report code that is not followed by `make report` fails here, not in a reader's eyes."""

import shutil
import subprocess
from pathlib import Path

import pytest

from bench.report import write_summary
from core.results import result_dir, results_root

ROOT = Path(__file__).resolve().parents[1]
# (task, preset, variant) of every summary.md under results/ that `make report` writes; the recipe
# folders' summaries come from their experiment scripts instead.
REPORTS = [("chess", "cpu", None), ("chess", "cpu", "layer.-1"), ("chess", "cpu", "layer.-2"),
           ("chess", "cpu", "layer.-4"), ("chess", "short", None), ("chess", "short-w128", None),
           ("language", "cpu", None), ("language", "cpu", "llm"), ("superposition", "cpu", None),
           ("superposition", "paper", None), ("superposition", "cpu", "importance-0.9_specialisation.False")]


@pytest.mark.parametrize("task, preset, variant", REPORTS)
def test_a_committed_summary_is_what_make_report_writes(tmp_path, monkeypatch, task, preset, variant):
    # without the summaries, so that only a written one can be compared
    shutil.copytree(ROOT / "results" / task, tmp_path / task,
                    ignore=shutil.ignore_patterns("summary.md", "summary.csv", "scores.png"))
    monkeypatch.setenv("MOEXBENCH_RESULTS", str(tmp_path))
    folder = result_dir(task, preset, variant)
    committed = ROOT / "results" / folder.relative_to(tmp_path)
    write_summary(task, preset, variant)
    for name in ("summary.md", "summary.csv"):
        assert (folder / name).read_text() == (committed / name).read_text(), (
            f"{committed / name} is not what `make report TASK={task} PRESET={preset}"
            f"{f' VARIANT={variant}' if variant else ''}` writes now; run it and commit the file")


def test_every_reported_summary_is_listed():
    reported = {result_dir(t, p, v).relative_to(results_root()) for t, p, v in REPORTS}
    # committed ones only: a tiny run of the README's leaves an ignored summary in a working checkout
    listed = subprocess.run(["git", "ls-files", "results"], cwd=ROOT, capture_output=True, text=True, check=True)
    found = {Path(line).parent.relative_to("results") for line in listed.stdout.splitlines()
             if line.endswith("/summary.md")}
    assert found - {Path("chess/recipe"), Path("chess/recipe_moves")} == reported


def test_the_move_recipe_summary_is_what_its_report_writes(tmp_path, monkeypatch):
    from experiments import chess_move_recipe

    committed = ROOT / "results" / "chess" / "recipe_moves"
    for arm in committed.glob("*.json"):
        shutil.copy(arm, tmp_path)
    monkeypatch.setattr(chess_move_recipe, "OUT", tmp_path)
    chess_move_recipe.report()
    assert (tmp_path / "summary.md").read_text() == (committed / "summary.md").read_text(), (
        f"{committed / 'summary.md'} is not what `python -m experiments.chess_move_recipe --report` writes now; "
        f"run it and commit the file")
