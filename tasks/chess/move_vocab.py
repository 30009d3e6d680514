"""The move vocabulary: one token per ply, every UCI move that can occur on a board.

The set is fixed by the rules, not by a corpus: from each square, every queen-line move (what a
queen on an empty board attacks) and every knight move, plus the promotions (a pawn on the seventh
rank stepping or capturing onto the eighth, as queen, rook, bishop or knight; and Black's mirror).
King moves and castling (`e1g1`) are queen-line moves already. That is 1,792 + 176 = 1,968 moves,
after `<pad>` (id 0) and `<bos>` (id 1), ordered by (from square, to square, promotion piece), with
squares numbered as python-chess numbers them (a1 = 0, h8 = 63).
"""

from __future__ import annotations

from functools import lru_cache

PAD, BOS = "<pad>", "<bos>"
PAD_ID, BOS_ID = 0, 1


def _every_move():
    import chess

    moves = set()
    for square in chess.SQUARES:
        board = chess.Board(None)
        board.set_piece_at(square, chess.Piece(chess.QUEEN, chess.WHITE))
        for target in chess.SquareSet(board.attacks_mask(square) | chess.BB_KNIGHT_ATTACKS[square]):
            moves.add(chess.Move(square, target))
    for from_rank, to_rank in ((6, 7), (1, 0)):
        for file in range(8):
            for to_file in (file - 1, file, file + 1):
                if 0 <= to_file < 8:
                    for piece in (chess.QUEEN, chess.ROOK, chess.BISHOP, chess.KNIGHT):
                        moves.add(chess.Move(chess.square(file, from_rank), chess.square(to_file, to_rank), piece))
    return sorted(moves, key=lambda m: (m.from_square, m.to_square, m.promotion or 0))


@lru_cache(maxsize=1)
def vocabulary() -> tuple[str, ...]:
    """Every token, by id."""
    return (PAD, BOS) + tuple(m.uci() for m in _every_move())


@lru_cache(maxsize=1)
def token_ids() -> dict[str, int]:
    return {token: i for i, token in enumerate(vocabulary())}
