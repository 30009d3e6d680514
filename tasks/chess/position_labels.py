"""The labels of one game's evaluation positions: the board after 2n plies for the first 20 n, its
piece class per square and its strategy BSPs. Computed in worker processes, so this module imports
python-chess and numpy only: a spawned worker of a `python -m` command (whose main module workers do
not re-import) starts in a fraction of a second instead of importing torch."""

from __future__ import annotations

import numpy as np

from tasks.chess.board_state import STRATEGY_FUNCTIONS, piece_classes, strategy_bsps
from tasks.chess.corpus import EVAL_MIN_DOTS, san_moves


def boards_at_positions(game: str, n_dots: int = EVAL_MIN_DOTS):
    """The chess.Board at each of the first n_dots evaluation positions, White to move (copies)."""
    import chess

    board, boards = chess.Board(), []
    moves = san_moves(game)
    ply = 0
    for n in range(n_dots):
        while ply < 2 * n:
            board.push_san(moves[ply])
            ply += 1
        boards.append(board.copy(stack=False))
    return boards


def labels_for_game(game: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(classes (n_dots, 64), {strategy name: (n_dots, 1 or 64)}) of one game's positions."""
    boards = boards_at_positions(game)
    classes = np.stack([piece_classes(b) for b in boards])
    per_board = [strategy_bsps(b) for b in boards]
    strat = {name: np.stack([bsps[name] for bsps in per_board]) for name in STRATEGY_FUNCTIONS}
    return classes, strat
