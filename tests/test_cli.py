"""Bad input at the front door: one line naming the problem and the choices, exit status 2."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*args):
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_help_lists_models_and_tasks():
    out = _run("--help")
    assert out.returncode == 0
    assert "models: dense" in out.stdout and "tasks: chess" in out.stdout


@pytest.mark.parametrize("args, message", [
    (["bench", "--model", "nonesuch"], "error: unknown model 'nonesuch'; choose one of dense"),
    (["bench", "--task", "nonesuch"], "error: unknown task 'nonesuch'; choose one of chess"),
    (["bench", "--preset", "huge"], "error: unknown preset 'huge'; choose one of tiny, tiny-moves, tiny-gpt2, cpu, short, short-w128, short-w384, gpu, gpu-smoke, paper"),
    (["bench", "--task", "superposition", "--preset", "short"],
     "error: task 'superposition' has no preset 'short'; choose one of tiny, cpu, paper"),
    (["bench", "--preset", "tiny", "layr=3"], "error: unknown setting 'layr' for ChessConfig; choose from"),
    (["bench", "--preset", "tiny", "layer=three"], "error: layer='three' is not a valid int; write layer=<int>"),
    (["bench", "--preset", "tiny", "layer"], "error: argument 'layer' is not KEY=VALUE; write a setting as"),
    (["bench", "--seed", "-1"], "error: argument --seed: '-1' is not a seed; write a whole number, 0 or more"),
    (["bench", "--threads", "0"], "error: argument --threads: '0' is not a thread count"),
    (["bench", "--preset", "tiny", "site=heads"], "error: site 'heads' unknown; choose mlp, resid or attn"),
    (["bench", "--preset", "tiny", "batch_size=0"],
     "error: batch_size=0 is below 1; write batch_size=<an integer >= 1>"),
    (["report", "--task", "language", "--variant", "nosuch"], "error: no results in "),
    (["bench", "--task", "superposition", "--preset", "tiny", "importance_decay=1.5"],
     "error: importance_decay=1.5 must be in (0, 1]; 1 is uniform importance"),
])
def test_bad_input_is_one_line_and_exit_2(args, message):
    out = _run(*args)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), out.stderr


@pytest.mark.parametrize("module", ["bench.grid", "bench.regress", "bench.convert_sae", "tasks.chess.own_games",
                                    "analysis.figures", "experiments.chess_move_recipe"])
def test_every_command_line_refuses_bad_arguments_in_one_line(module):
    out = subprocess.run([sys.executable, "-m", module, "--no-such-flag"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), out.stderr


def test_no_command_line_builds_a_plain_argparse_parser():
    """Each script's parser is core.arguments.OneLineParser, so the test above holds for the ones it does not run."""
    plain = [str(path.relative_to(ROOT)) for folder in ("adapters", "analysis", "bench", "core", "experiments", "models",
                                                        "perf", "tasks")
             for path in (ROOT / folder).rglob("*.py") if "argparse.ArgumentParser(" in path.read_text()]
    assert plain == [], plain


def test_make_train_trains_a_dictionary_models_parts_under_no_train(monkeypatch):
    """MOEXBENCH_NO_TRAIN guards `make bench`; `make train` is asked to train, an SAE's base model included."""
    import argparse

    from bench import cli, model_store

    class Stop(Exception):
        pass

    seen = {}

    def first_training_step(*args, **kwargs):
        seen["allowed"] = model_store.training_allowed()
        raise Stop
    monkeypatch.setenv("MOEXBENCH_NO_TRAIN", "1")
    monkeypatch.setattr(model_store, "load_or_train", first_training_step)
    args = argparse.Namespace(model="dense+sae", task="chess", preset="tiny", seed=0, device="cpu", threads=1,
                              quiet=False)  # quiet would set MOEXBENCH_QUIET for every later test
    with pytest.raises(Stop):
        cli.cmd_train(args)
    assert seen == {"allowed": True}


def test_a_report_where_only_other_settings_were_scored_names_their_folders(tmp_path, monkeypatch, capsys):
    from bench.cli import main
    from core.results import write_result

    monkeypatch.setenv("MOEXBENCH_RESULTS", str(tmp_path))
    write_result("language", "dense", "tiny", 0, {"detection": 0.6}, {}, {}, {}, variant="layer.-1")
    assert main(["report", "--task", "language", "--preset", "tiny"]) == 2
    assert capsys.readouterr().err.strip().endswith("from the default settings; choose VARIANT from: layer.-1 "
                                                    "(make report ... VARIANT=<folder>)")
    assert main(["report", "--task", "language", "--preset", "tiny", "--variant", "layer.-1"]) == 0
