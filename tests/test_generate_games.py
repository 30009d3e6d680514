"""The corpus generator with the real engine and book (installed by `make chess-deps` / .ci/run)."""

import chess
import pytest

from tasks.chess.generate_games import BOOK, STOCKFISH, GeneratorSettings, generate, split_corpus

pytestmark = pytest.mark.skipif(not (__import__("os").path.exists(STOCKFISH) and __import__("os").path.exists(BOOK)),
                                reason="needs Debian's stockfish and gnuchess-book (make chess-deps)")


def test_games_depend_on_seed_and_index_only_not_on_workers():
    settings = GeneratorSettings(seed=7, max_plies=24)
    one = generate(6, settings, workers=1)
    two = generate(6, settings, workers=2)
    assert one == two and len(one) == 6
    assert generate(3, GeneratorSettings(seed=8, max_plies=24), workers=1) != one[:3]


def test_games_are_legal_movetext_with_book_openings():
    for game in generate(4, GeneratorSettings(seed=1, max_plies=20), workers=1):
        assert game.startswith(";1.")
        board = chess.Board()
        for token in game[1:].split():
            board.push_san(token.split(".", 1)[1] if "." in token else token)
        assert len(board.move_stack) <= 20


def test_split_refuses_when_too_few_games_are_long_enough():
    with pytest.raises(SystemExit, match="generate more games"):
        split_corpus([";1.e4 e5"] * 10, n_probe=5, seed=0)
