"""Board-state properties (BSPs) of docs/chess.md section 5, with the reference's semantics.

Each function maps a `chess.Board` to a flat uint8 vector of binary BSPs: the masked board state
gives 768 (64 squares x 12 piece classes), the 14 strategy functions 1 or 64 each. Square index =
python-chess's (0 = a1, 1 = b1, ..., 63 = h8), i.e. grid row = rank, col = file.
"""

from __future__ import annotations

from collections import defaultdict

import chess
import numpy as np

PIECE_VALUE = {chess.PAWN: 1, chess.KNIGHT: 2, chess.BISHOP: 3, chess.ROOK: 4, chess.QUEEN: 5, chess.KING: 6}
N_CLASSES = 13  # values -6..6, class = value + 6
BLANK_CLASS = 6
KEPT_CLASSES = [c for c in range(N_CLASSES) if c != BLANK_CLASS]  # 12 classes, blank dropped


def piece_classes(board: chess.Board) -> np.ndarray:
    """(64,) class per square: value + 6, black negative, blank 6."""
    out = np.full(64, BLANK_CLASS, dtype=np.int8)
    for square, piece in board.piece_map().items():
        value = PIECE_VALUE[piece.piece_type]
        out[square] = BLANK_CLASS + (value if piece.color == chess.WHITE else -value)
    return out


# (64, 13) True where the starting position has that (square, piece type, colour): such cells are
# rewritten as blank, whichever piece it is (any white knight on b1 is masked).
INITIAL_MASK = np.zeros((64, N_CLASSES), dtype=bool)
INITIAL_MASK[np.arange(64), piece_classes(chess.Board())] = True
INITIAL_MASK[:, BLANK_CLASS] = False


def one_hot_to_masked_bsps(classes: np.ndarray) -> np.ndarray:
    """(n, 64) piece classes -> (n, 768) masked board-state BSPs, square-major (square*12 + k)."""
    one_hot = np.zeros((len(classes), 64, N_CLASSES), dtype=np.uint8)
    np.put_along_axis(one_hot, classes[:, :, None].astype(np.int64), 1, axis=2)
    one_hot[:, INITIAL_MASK] = 0
    return one_hot[:, :, KEPT_CLASSES].reshape(len(classes), 64 * len(KEPT_CLASSES))


def board_state(board: chess.Board) -> np.ndarray:
    return one_hot_to_masked_bsps(piece_classes(board)[None])[0]


# --- the 14 strategy functions; "side to move" unless the reference fixes a colour ---

def _flag(value: bool) -> np.ndarray:
    return np.array([1 if value else 0], dtype=np.uint8)


def check(board: chess.Board) -> np.ndarray:
    return _flag(board.is_check())


def can_check(board: chess.Board) -> np.ndarray:
    for move in board.legal_moves:
        if board.gives_check(move):
            return _flag(True)
    return _flag(False)


def has_queen(board: chess.Board) -> np.ndarray:
    return _flag(bool(board.pieces(chess.QUEEN, board.turn)))


def can_capture_queen(board: chess.Board) -> np.ndarray:
    # The reference looks only at the first opponent queen in piece_map() order.
    target = next((sq for sq, p in board.piece_map().items()
                   if p.piece_type == chess.QUEEN and p.color != board.turn), None)
    if target is None:
        return _flag(False)
    return _flag(any(m.to_square == target and board.is_capture(m) for m in board.legal_moves))


def bishop_pair(board: chess.Board) -> np.ndarray:
    return _flag(len(board.pieces(chess.BISHOP, board.turn)) >= 2)


def castling_rights(board: chess.Board) -> np.ndarray:
    return _flag(board.has_castling_rights(board.turn))


def kingside_castling(board: chess.Board) -> np.ndarray:
    return _flag(board.has_kingside_castling_rights(board.turn))


def queenside_castling(board: chess.Board) -> np.ndarray:
    return _flag(board.has_queenside_castling_rights(board.turn))


FORK_TARGETS = {
    chess.PAWN: (chess.KNIGHT, chess.BISHOP, chess.ROOK, chess.QUEEN, chess.KING),
    chess.KNIGHT: (chess.ROOK, chess.QUEEN, chess.KING),
    chess.BISHOP: (chess.ROOK, chess.QUEEN, chess.KING),
    chess.ROOK: (chess.QUEEN, chess.KING),
}


def fork(board: chess.Board) -> np.ndarray:
    """Reference semantics: for one (attacker type, single target type) pair, the enemy pieces of
    that type attacked by the side to move's unpinned attackers of that type, summed over those
    attackers, number two or more. So two knights each hitting a rook count; one knight hitting
    king and queen does not (those are different target types)."""
    me = board.turn
    for attacker_type, target_types in FORK_TARGETS.items():
        attackers = [sq for sq in board.pieces(attacker_type, me) if not board.is_pinned(me, sq)]
        for target_type in target_types:
            targets = board.pieces(target_type, not me)
            if sum(len(board.attacks(sq) & targets) for sq in attackers) >= 2:
                return _flag(True)
    return _flag(False)


def pin(board: chess.Board) -> np.ndarray:
    for color in (chess.WHITE, chess.BLACK):
        for square in chess.SquareSet(board.occupied_co[color]):
            if board.is_pinned(color, square):
                return _flag(True)
    return _flag(False)


def legal_en_passant(board: chess.Board) -> np.ndarray:
    return _flag(board.has_legal_en_passant())


def ambiguous_moves(board: chess.Board) -> np.ndarray:
    # Two same-type pieces that can legally reach one square; pawn captures included. Promotion
    # moves of one pawn share a from-square, so they do not count (the reference's file/rank test).
    sources = defaultdict(list)
    for move in board.legal_moves:
        piece = board.piece_at(move.from_square)
        sources[(piece.piece_type, move.to_square)].append(move.from_square)
    for from_squares in sources.values():
        if len({chess.square_file(s) for s in from_squares}) > 1 or \
                len({chess.square_rank(s) for s in from_squares}) > 1:
            return _flag(True)
    return _flag(False)


def threatened_squares(board: chess.Board) -> np.ndarray:
    # The reference fixes the attacker as Black: at the dots White is to move, so these are "theirs".
    out = np.zeros(64, dtype=np.uint8)
    for square in range(64):
        out[square] = board.is_attacked_by(chess.BLACK, square)
    return out


def legal_moves(board: chess.Board) -> np.ndarray:
    # The reference keeps only White's moves: at the dots those are the side to move's.
    out = np.zeros(64, dtype=np.uint8)
    for move in board.legal_moves:
        if board.color_at(move.from_square) == chess.WHITE:
            out[move.to_square] = 1
    return out


STRATEGY_FUNCTIONS = {
    f.__name__: f for f in (check, can_check, has_queen, can_capture_queen, bishop_pair, castling_rights,
                            kingside_castling, queenside_castling, fork, pin, legal_en_passant,
                            ambiguous_moves, threatened_squares, legal_moves)
}
STRATEGY_SIZES = {name: (64 if name in ("threatened_squares", "legal_moves") else 1) for name in STRATEGY_FUNCTIONS}
