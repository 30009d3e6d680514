"""A researcher's own games as the chess corpus (tasks/chess/own_games.py): the folder it writes is
what the task reads, bad games are named, and nothing is written over."""

import json
import os
import subprocess
import sys
from pathlib import Path

import chess.pgn
import pytest

from core.errors import BenchError
from core.own_data import variant_for
from tasks.chess.corpus import read_split, san_moves
from tasks.chess.own_games import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def games() -> list[str]:
    return read_split("probe_test")[:150]


def _pgn(game: str) -> str:
    """One of our movetext games as PGN, through python-chess."""
    board = chess.Board()
    for san in san_moves(game):
        board.push_san(san)
    return str(chess.pgn.Game.from_board(board))


def test_pgn_and_rows_become_three_disjoint_splits_of_distinct_games(tmp_path, games):
    pgn = tmp_path / "mine.pgn"
    pgn.write_text("\n\n".join(_pgn(g) for g in games[:100]) + "\n")
    rows = tmp_path / "rows.txt"
    rows.write_text("\n".join(games[90:150]) + "\n")          # 10 games also in the PGN file
    out = tmp_path / "corpus"
    assert main(["--out", str(out), "--pgn", str(pgn), "--blocks", str(rows), "--probe-games", "40"]) == 0
    splits = {name: read_split(name, out) for name in ("train", "probe_train", "probe_test")}
    assert (len(splits["probe_train"]), len(splits["probe_test"]), len(splits["train"])) == (40, 40, 70)
    everything = [g for split in splits.values() for g in split]
    assert sorted(everything) == sorted(games)                 # each distinct game once, none changed
    assert not set(splits["probe_train"]) & set(splits["probe_test"])


def test_refusals_name_the_problem_and_write_nothing(tmp_path, games, capsys):
    rows = tmp_path / "rows.txt"
    rows.write_text("\n".join(games[:100]) + "\n")
    existing = tmp_path / "mine"
    existing.mkdir()
    assert main(["--out", str(existing), "--blocks", str(rows), "--probe-games", "10"]) == 2
    assert main(["--out", str(tmp_path / "few"), "--blocks", str(rows), "--probe-games", "60"]) == 2
    assert "two probe sets of 60 need 120" in capsys.readouterr().err
    bad = tmp_path / "bad.txt"
    bad.write_text(games[0] + "\n" + games[1].replace(" ", " Ke9 ", 1) + "\n")
    assert main(["--out", str(tmp_path / "bad"), "--blocks", str(bad), "--probe-games", "1"]) == 2
    assert f"{bad}:2" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.txt", "mine", "rows.txt"]
    assert list(existing.iterdir()) == []


def test_a_missing_or_bad_pgn_is_one_line_naming_the_file_and_the_flag(tmp_path, games):
    """Through the command line, as a user runs it: python-chess's own log line must not come first."""
    bad = tmp_path / "bad.pgn"
    bad.write_text(_pgn(games[0]) + "\n\n" + '[Event "x"]\n\n1. e4 e5 2. Ke5 Nc6 *\n')
    for given, words in ((tmp_path / "nope.pgn", "nope.pgn does not exist"),
                         (tmp_path, "is a directory, not a file of games"),
                         (bad, "bad game (illegal san: 'Ke5'")):
        out = subprocess.run([sys.executable, "-m", "tasks.chess.own_games", "--out", str(tmp_path / "corpus"),
                              "--pgn", str(given)], cwd=ROOT, capture_output=True, text=True, timeout=120)
        lines = out.stderr.strip().splitlines()
        assert out.returncode == 2 and len(lines) == 1 and words in lines[0], out.stderr
    assert "own_games --skip-bad" in lines[0]
    assert not (tmp_path / "corpus").exists()


def test_more_games_on_a_folder_of_your_own_games_says_it_has_no_generator_settings(tmp_path, games, capsys):
    from tasks.chess.more_games import main as more_games

    rows = tmp_path / "rows.txt"
    rows.write_text("\n".join(games[:100]) + "\n")
    assert main(["--out", str(tmp_path / "mine"), "--blocks", str(rows), "--probe-games", "10"]) == 0
    capsys.readouterr()
    assert more_games(["--shards", "1", "--data", str(tmp_path / "mine")]) == 2
    assert "card.json does not exist" in capsys.readouterr().err and not (tmp_path / "mine" / "more").exists()


def test_ctrl_c_while_writing_leaves_nothing_and_says_so(tmp_path, games, capsys, monkeypatch):
    rows = tmp_path / "rows.txt"
    rows.write_text("\n".join(games[:100]) + "\n")
    written = []

    def write_then_interrupt(path, split):   # the first split lands in the hidden folder, then Ctrl-C
        path.write_text("\n".join(split) + "\n")
        written.append(path)
        raise KeyboardInterrupt

    monkeypatch.setattr("tasks.chess.own_games.write_split", write_then_interrupt)
    assert main(["--out", str(tmp_path / "mine"), "--blocks", str(rows), "--probe-games", "10"]) == 130
    assert capsys.readouterr().err.strip() == "interrupted; nothing was written"
    assert written and not written[0].exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.txt"]


def test_the_chess_task_runs_end_to_end_on_your_own_games(tmp_path, games):
    rows = tmp_path / "rows.txt"
    rows.write_text("\n".join(games) + "\n")
    out = tmp_path / "corpus"
    assert main(["--out", str(out), "--blocks", str(rows), "--probe-games", "40"]) == 0
    env = {**os.environ, "MOEXBENCH_CHESS_DATA": str(out), "MOEXBENCH_RESULTS": str(tmp_path / "results"),
           "MOEXBENCH_CHECKPOINTS": str(tmp_path / "ckpt"), "MOEXBENCH_RUNS": str(tmp_path / "runs"),
           "MOEXBENCH_CACHE": str(tmp_path / "cache"), "CI": "true", "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-m", "bench", "bench", "--task", "chess", "--model", "dense",
                          "--preset", "tiny", "--threads", "1"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    # Results on your games go to a folder named after them, and say whose games they are.
    result = json.loads((tmp_path / "results" / "chess" / "tiny" / variant_for(out) / "dense.json").read_text())
    assert variant_for(out).startswith("data.corpus-") and result["provenance"]["data"].startswith(str(out))
    assert result["details"]["positions"] == {"probe_train": 40 * 20, "probe_test": 40 * 20}
    assert f"data: your games in {out} (MOEXBENCH_CHESS_DATA), not the committed engine games" in \
        result["provenance"]["deviations"]
    # The report, with no VARIANT, summarises your games' results, not the committed ones.
    run = subprocess.run([sys.executable, "-m", "bench", "report", "--task", "chess", "--preset", "tiny"],
                         cwd=ROOT, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    summary = tmp_path / "results" / "chess" / "tiny" / variant_for(out) / "summary.md"
    assert f"wrote {summary}" in run.stdout and "dense" in summary.read_text()
    # The model trained on your games is not read, under its plain name, for the committed games.
    committed = {k: v for k, v in env.items() if k != "MOEXBENCH_CHESS_DATA"}
    run = subprocess.run([sys.executable, "-m", "bench", "bench", "--task", "chess", "--model", "dense",
                          "--preset", "tiny", "--threads", "1"], cwd=ROOT, env=committed, capture_output=True, text=True)
    assert run.returncode == 2 and f"was trained on {out.resolve()} sha256" in run.stderr, run.stderr[-2000:]
    assert "this run reads the committed data" in run.stderr
    # Without a checkpoint folder of its own, a model your games would train is refused, not trained into ours.
    del env["MOEXBENCH_CHECKPOINTS"]
    run = subprocess.run([sys.executable, "-m", "bench", "bench", "--task", "chess", "--model", "moe",
                          "--preset", "tiny", "--threads", "1"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert run.returncode == 2 and "set MOEXBENCH_CHECKPOINTS=<a folder of its own>" in run.stderr
    assert not list((ROOT / "checkpoints" / "chess").glob("moe-tiny*"))


def test_a_folder_of_yours_without_the_split_names_the_variable_and_the_fix(tmp_path, monkeypatch):
    from tasks.chess import corpus

    monkeypatch.setenv("MOEXBENCH_CHESS_DATA", str(tmp_path / "nope"))
    monkeypatch.setattr(corpus, "EMBEDDED_DIR", tmp_path / "nope")   # as the variable sets it at import
    with pytest.raises(BenchError, match=r"^MOEXBENCH_CHESS_DATA=.*/nope: no probe_train\.txt\.xz there; write your "
                                         r"games into it with `python -m tasks\.chess\.own_games`, or unset it$"):
        corpus.read_split("probe_train")


def test_a_preset_that_reads_shards_tells_your_own_games_how_to_have_them(tmp_path, monkeypatch):
    """Shards of more engine games come from the committed generator; a folder of your games has none."""
    import tasks.chess.task as chess_task

    monkeypatch.setattr(chess_task, "EMBEDDED_DIR", tmp_path)
    with pytest.raises(BenchError, match=r"add shards of your games there .*choose a preset that reads none "
                                         r"\(tiny, tiny-moves, paper, gpu-smoke\)"):
        chess_task.training_files("cpu")
    assert chess_task.training_files("tiny") == [tmp_path / "train.txt.xz"]
