"""More games in shards: a kill mid-write loses only the cut line, and a shard keeps only new games."""

import json

from tasks.chess.corpus import read_games_file
from tasks.chess.more_games import _read_progress, finish_shard, shard_files


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
