"""More games in shards: a kill mid-write loses only the cut line, and a shard keeps only new games."""

import json
import os
import shutil
from pathlib import Path

import pytest

from tasks.chess.corpus import read_games_file, read_split
from tasks.chess.generate_games import BOOK, STOCKFISH
from tasks.chess.more_games import _read_progress, finish_shard, main, shard_files

ROOT = Path(__file__).resolve().parents[1]


def test_a_progress_line_cut_by_a_kill_is_dropped_and_the_file_mended(tmp_path):
    path = tmp_path / "progress.jsonl"
    whole = json.dumps({"5": ";1.e4 e5", "6": ";1.d4"}) + "\n"
    path.write_text(whole + '{"7": ";1.c4 c5", "8')
    assert _read_progress(path) == {5: ";1.e4 e5", 6: ";1.d4"}
    assert path.read_text() == whole  # the next run appends after a whole line
    with open(path, "a") as f:
        f.write(json.dumps({"7": ";1.c4"}) + "\n")
    assert _read_progress(path) == {5: ";1.e4 e5", 6: ";1.d4", 7: ";1.c4"}


def test_a_shard_keeps_new_games_in_index_order_and_drops_what_was_seen(tmp_path):
    seen = {";1.e4 e5"}  # e.g. a probe game
    kept = finish_shard(tmp_path, 0, {9: ";1.d4", 3: ";1.e4 e5", 4: ";1.c4", 7: ";1.d4"}, seen)
    assert kept == [";1.c4", ";1.d4"]
    assert read_games_file(shard_files(tmp_path)[0]) == kept
    assert seen == {";1.e4 e5", ";1.c4", ";1.d4"}


@pytest.mark.skipif(not (os.path.exists(STOCKFISH) and os.path.exists(BOOK)),
                    reason="needs Debian's stockfish and gnuchess-book (make chess-deps)")
def test_shards_resume_record_themselves_and_refuse_another_shard_size(tmp_path, capsys):
    data = tmp_path / "chess"
    shutil.copytree(ROOT / "data" / "chess", data, ignore=shutil.ignore_patterns("more"))
    card = json.loads((data / "card.json").read_text())
    card.pop("more_shards", None)
    (data / "card.json").write_text(json.dumps(card))
    args = ["--shards", "2", "--shard-games", "3", "--data", str(data), "--progress", str(tmp_path / "progress")]
    main(args)
    shards = json.loads((data / "card.json").read_text())["more_shards"]
    base = card["games_requested"]
    assert [s["game_indices"] for s in shards.values()] == [[base, base + 2], [base + 3, base + 5]]
    games = [read_games_file(p) for p in shard_files(data)]
    assert not set(games[0]) & set(games[1]) and not set(games[0] + games[1]) & set(read_split("probe_test", data))

    # killed after writing shard 1 but before recording it: the next run records it, replaying nothing
    card["more_shards"] = {"train-000.txt.xz": shards["train-000.txt.xz"]}
    (data / "card.json").write_text(json.dumps(card))
    before = [p.read_bytes() for p in shard_files(data)]
    main(args)
    assert json.loads((data / "card.json").read_text())["more_shards"] == shards
    assert [p.read_bytes() for p in shard_files(data)] == before

    capsys.readouterr()
    assert main(args[:2] + ["--shard-games", "4"] + args[4:]) == 2
    assert "played with --shard-games 3; pass that" in capsys.readouterr().err
