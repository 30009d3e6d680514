import pytest

from core.errors import BenchError
from tasks.chess.corpus import EVAL_MIN_DOTS, EVAL_WINDOW, load_blocks, load_pgn, read_split
from tasks.chess.tokenizer import encode

PGN = """[Event "one"]
[White "a"]

1. e4 e5 2. Nf3 Nc6 3. Bb5 a6 1-0

[Event "two"]

1. d4 d5 2. Bxh7 Nf6 0-1

[Event "three"]

1. c4 e5 *
"""


def test_pgn_games_become_movetext(tmp_path):
    path = tmp_path / "ok.pgn"
    path.write_text(PGN.replace("2. Bxh7", "2. c4"))
    games = load_pgn(path).games
    assert games == [";1.e4 e5 2.Nf3 Nc6 3.Bb5 a6", ";1.d4 d5 2.c4 Nf6", ";1.c4 e5"]


def test_a_pgn_game_from_a_set_up_position_is_refused(tmp_path):
    # legal from its FEN, but the movetext is read from the initial position: it would become another game
    path = tmp_path / "fen.pgn"
    path.write_text('[Event "e"]\n[SetUp "1"]\n[FEN "4k3/8/8/8/8/8/8/4K2R w K - 0 1"]\n\n1. O-O Kd7 *\n')
    with pytest.raises(BenchError, match=r"fen\.pgn:1: bad game \(it starts from a set-up position"):
        load_pgn(path)


def test_illegal_move_in_a_pgn_names_file_and_line(tmp_path):
    path = tmp_path / "bad.pgn"
    path.write_text(PGN)
    with pytest.raises(BenchError, match=r"bad\.pgn:6: bad game"):
        load_pgn(path)
    loaded = load_pgn(path, on_error="skip")
    assert len(loaded.games) == 2 and len(loaded.skipped) == 1 and "bad.pgn:6" in loaded.skipped[0]


def test_blocks_drop_only_the_cut_final_move(tmp_path):
    path = tmp_path / "blocks.txt"
    path.write_text(";1.e4 e5 2.Nf3 Nc6 ;1.d4 d5 2.c4 e6 3.Nc\n")
    assert load_blocks(path).games == [";1.e4 e5 2.Nf3 Nc6", ";1.d4 d5 2.c4 e6"]


def test_blocks_cut_inside_a_move_number_drop_it_and_a_complete_illegal_last_move_is_refused(tmp_path):
    path = tmp_path / "blocks.txt"
    path.write_text(";1.e4 e5 2.Nf3 Nc6 3.Bc4 Bc5 4\n")  # `4.` cut after its digit
    assert load_blocks(path).games == [";1.e4 e5 2.Nf3 Nc6 3.Bc4 Bc5"]
    # neither is a cut: a number that is not the move's, a complete move that lacks its number
    for game in (";1.e4 e5 2.Nf3 7", ";1.e4 e5 2.Nf3 Nc6 Bb5"):
        path.write_text(game + "\n")
        with pytest.raises(BenchError, match=r"blocks\.txt:1: (illegal or malformed move '7'|ply 5: 'Bb5' should be)"):
            load_blocks(path)
    # Qxf7 is no prefix of any legal move there (the queen is still on d1): not a cut, a bad game
    path.write_text(";1.e4 e5 2.Nf3 Nc6 3.Qxf7\n")
    with pytest.raises(BenchError, match=r"blocks\.txt:1: illegal or malformed move 'Qxf7'"):
        load_blocks(path)


def test_blocks_refuse_a_line_that_is_not_a_block_and_a_game_without_its_move_numbers(tmp_path):
    path = tmp_path / "blocks.txt"
    path.write_text(";1.e4 e5 2.Nf3 Nc6\nThe quick brown fox\n")
    with pytest.raises(BenchError, match=r"blocks\.txt:2: not a block of"):
        load_blocks(path)
    # the character format reads positions at the dots: a missing number would misplace every later one
    path.write_text(";1.e4 e5 Nf3 Nc6 3.Bc4 Bc5\n")
    with pytest.raises(BenchError, match=r"blocks\.txt:1: ply 3: 'Nf3' should be White's move 2, written 2\.<move>"):
        load_blocks(path)
    path.write_text(";1.e4 2.e5 3.Nf3\n")
    with pytest.raises(BenchError, match=r"ply 2: '2\.e5' should be Black's reply"):
        load_blocks(path)


def test_blocks_with_an_illegal_move_mid_game_name_the_line(tmp_path):
    path = tmp_path / "blocks.txt"
    path.write_text(";1.e4 e5 2.Nf3 Nc6\n;1.e4 e5 2.Ke3 Nc6 3.Nf3\n")
    with pytest.raises(BenchError, match=r"blocks\.txt:2: illegal or malformed move 'Ke3'"):
        load_blocks(path)
    assert len(load_blocks(path, on_error="skip").skipped) == 1


def test_committed_corpus_meets_the_issue_sizes():
    train, probe_train, probe_test = (read_split(s) for s in ("train", "probe_train", "probe_test"))
    assert len(train) >= 20_000 and len(probe_train) == len(probe_test) == 1000
    assert not (set(probe_train) & set(probe_test)) and not (set(train) & (set(probe_train) | set(probe_test)))
    for game in probe_train + probe_test:
        assert game.startswith(";1.") and game[:EVAL_WINDOW].count(".") >= EVAL_MIN_DOTS
    encode("".join(train[:200]))  # every character is in the vocabulary


def test_line_numbers_count_bytes_so_accented_headers_do_not_shift_them(tmp_path):
    path = tmp_path / "accents.pgn"
    path.write_text(PGN.replace('[White "a"]', '[White "Émile Lasker-Schönberg"]'), encoding="utf-8")
    with pytest.raises(BenchError, match=r"accents\.pgn:6: bad game"):
        load_pgn(path)


def test_non_utf8_pgn_is_a_clear_error(tmp_path):
    path = tmp_path / "latin1.pgn"
    path.write_bytes(PGN.replace('[White "a"]', '[White "\xc9mile"]').encode("latin-1"))
    with pytest.raises(BenchError, match=r"latin1\.pgn is not UTF-8"):
        load_pgn(path)


def test_an_empty_pgn_is_a_clear_error(tmp_path):
    path = tmp_path / "empty.pgn"
    path.write_text("")
    with pytest.raises(BenchError, match=r"empty\.pgn holds no games"):
        load_pgn(path)


def test_an_evaluation_game_without_a_move_number_is_refused_naming_its_file_and_line(tmp_path, monkeypatch):
    from tasks.chess import positions

    games = read_split("probe_test")[:25]
    games[4] = games[4].replace(" 2.", " ", 1)  # legal moves still, but its dots no longer count moves
    monkeypatch.setattr(positions, "CACHE", tmp_path)
    with pytest.raises(BenchError, match=r"^data/probe_test\.txt\.xz:5: ply 3: '\S+' should be White's move 2"):
        positions.build_position_sets([games], workers=1, fmt_name="chars", sources=["data/probe_test.txt.xz"])
