"""Board-state properties (BSPs) of docs/chess.md section 5, with the reference's semantics.

Each function maps a `chess.Board` to a flat uint8 vector of binary BSPs: the masked board state
gives 768 (64 squares x 12 piece classes), the 14 strategy functions 1 or 64 each. Square index =
python-chess's (0 = a1, 1 = b1, ..., 63 = h8), i.e. grid row = rank, col = file.

A strategy function takes the board and its legal moves as a list: generating them costs more than
most functions, so `strategy_bsps` generates them once per position. Labelling the evaluation games
is on every cold `make bench`'s path, hence the bitboard forms below; each is tested equal to its
plain python-chess definition on every position of engine games and of seeded random games
(tests/test_board_state.py).
"""

from __future__ import annotations

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


def check(board: chess.Board, moves: list[chess.Move]) -> np.ndarray:
    return _flag(board.is_check())


def can_check(board: chess.Board, moves: list[chess.Move]) -> np.ndarray:
    king = board.king(not board.turn)
    if king is None:
        return _flag(False)
    mine = [board.pieces_mask(t, board.turn) for t in chess.PIECE_TYPES]
    # A move can give check only by landing where a knight or pawn hits the king, by moving from or to
    # a line through the king (a slider's check, direct or discovered), or as castling or en passant:
    # the others are passed over unexamined.
    lines = (chess.BB_RANK_ATTACKS[king][0] | chess.BB_FILE_ATTACKS[king][0] | chess.BB_DIAG_ATTACKS[king][0])
    hops = chess.BB_KNIGHT_ATTACKS[king] | chess.BB_PAWN_ATTACKS[not board.turn][king]
    special = chess.BB_SQUARES[board.ep_square] if board.ep_square is not None else 0
    kings = mine[chess.KING - 1]
    for move in moves:
        origin, target = chess.BB_SQUARES[move.from_square], chess.BB_SQUARES[move.to_square]
        castling = origin & kings and abs(move.to_square - move.from_square) == 2
        if ((origin | target) & lines or target & (hops | special) or castling) and \
                _checks_after(board, move, king, mine):
            return _flag(True)
    return _flag(False)


def gives_check(board: chess.Board, move: chess.Move) -> bool:
    """`board.gives_check(move)` for a legal move of a standard board in a position that can occur (the
    side not to move is not in check), without its push and pop (most of can_check's cost)."""
    king = board.king(not board.turn)
    mine = [board.pieces_mask(t, board.turn) for t in chess.PIECE_TYPES]
    return king is not None and _checks_after(board, move, king, mine)


def _checks_after(board: chess.Board, move: chess.Move, king: chess.Square, mine: list[int]) -> bool:
    """Whether the mover's pieces (`mine`: a mask per piece type, pawn first) attack `king` once `move`
    is played: the pieces and the occupancy after the move, then the attacks on the king from there,
    direct or discovered."""
    us = board.turn
    origin, target = chess.BB_SQUARES[move.from_square], chess.BB_SQUARES[move.to_square]
    occupied = (board.occupied & ~origin) | target
    pawns, knights, bishops, rooks, queens, kings = (mask & ~origin for mask in mine)
    moved = move.promotion or board.piece_type_at(move.from_square)
    if moved == chess.PAWN:
        pawns |= target
        if board.ep_square == move.to_square and move.from_square % 8 != move.to_square % 8:
            # en passant (a diagonal pawn move onto the en passant square): the taken pawn leaves
            occupied &= ~chess.BB_SQUARES[move.to_square - 8 if us == chess.WHITE else move.to_square + 8]
    elif moved == chess.KNIGHT:
        knights |= target
    elif moved == chess.BISHOP:
        bishops |= target
    elif moved == chess.ROOK:
        rooks |= target
    elif moved == chess.QUEEN:
        queens |= target
    else:
        kings |= target
        if abs(move.to_square - move.from_square) == 2:  # castling (e1g1, e1c1): the rook jumps over
            kingside = move.to_square > move.from_square
            rook_from = chess.BB_SQUARES[move.from_square + 3 if kingside else move.from_square - 4]
            rook_to = chess.BB_SQUARES[move.from_square + 1 if kingside else move.from_square - 1]
            occupied = (occupied & ~rook_from) | rook_to
            rooks = (rooks & ~rook_from) | rook_to
    return bool(
        chess.BB_KNIGHT_ATTACKS[king] & knights
        or chess.BB_PAWN_ATTACKS[not us][king] & pawns
        or chess.BB_KING_ATTACKS[king] & kings
        or chess.BB_DIAG_ATTACKS[king][chess.BB_DIAG_MASKS[king] & occupied] & (bishops | queens)
        or (chess.BB_RANK_ATTACKS[king][chess.BB_RANK_MASKS[king] & occupied]
            | chess.BB_FILE_ATTACKS[king][chess.BB_FILE_MASKS[king] & occupied]) & (rooks | queens))


def has_queen(board: chess.Board, moves: list[chess.Move]) -> np.ndarray:
    return _flag(bool(board.pieces(chess.QUEEN, board.turn)))


def can_capture_queen(board: chess.Board, moves: list[chess.Move]) -> np.ndarray:
    # The reference looks only at the first opponent queen in piece_map() order, which runs from h8
    # down: the highest square holding one.
    queens = board.pieces_mask(chess.QUEEN, not board.turn)
    if not queens:
        return _flag(False)
    target = chess.msb(queens)
    return _flag(any(m.to_square == target and board.is_capture(m) for m in moves))


def bishop_pair(board: chess.Board, moves: list[chess.Move]) -> np.ndarray:
    return _flag(len(board.pieces(chess.BISHOP, board.turn)) >= 2)


def castling_rights(board: chess.Board, moves: list[chess.Move]) -> np.ndarray:
    return _flag(board.has_castling_rights(board.turn))


def kingside_castling(board: chess.Board, moves: list[chess.Move]) -> np.ndarray:
    return _flag(board.has_kingside_castling_rights(board.turn))


def queenside_castling(board: chess.Board, moves: list[chess.Move]) -> np.ndarray:
    return _flag(board.has_queenside_castling_rights(board.turn))


FORK_TARGETS = {
    chess.PAWN: (chess.KNIGHT, chess.BISHOP, chess.ROOK, chess.QUEEN, chess.KING),
    chess.KNIGHT: (chess.ROOK, chess.QUEEN, chess.KING),
    chess.BISHOP: (chess.ROOK, chess.QUEEN, chess.KING),
    chess.ROOK: (chess.QUEEN, chess.KING),
}


def fork(board: chess.Board, moves: list[chess.Move]) -> np.ndarray:
    """Reference semantics: for one (attacker type, single target type) pair, the enemy pieces of
    that type attacked by the side to move's unpinned attackers of that type, summed over those
    attackers, number two or more. So two knights each hitting a rook count; one knight hitting
    king and queen does not (those are different target types)."""
    me = board.turn
    pinned = _pinned_pieces(board, me)
    for attacker_type, target_types in FORK_TARGETS.items():
        reach = [board.attacks_mask(sq) for sq in chess.scan_forward(board.pieces_mask(attacker_type, me) & ~pinned)]
        for target_type in target_types:
            targets = board.pieces_mask(target_type, not me)
            if sum((squares & targets).bit_count() for squares in reach) >= 2:
                return _flag(True)
    return _flag(False)


def _pinned_pieces(board: chess.Board, color: chess.Color) -> int:
    """The square set of `color`'s pieces for which board.is_pinned is true. It asks only about pieces
    on a line through their king with an enemy slider of that line's kind on it: no other can be."""
    king = board.king(color)
    if king is None:
        return 0
    straight = chess.BB_RANK_ATTACKS[king][0] | chess.BB_FILE_ATTACKS[king][0]
    diagonal = chess.BB_DIAG_ATTACKS[king][0]
    enemy = board.occupied_co[not color]
    snipers = enemy & (straight & (board.rooks | board.queens) | diagonal & (board.bishops | board.queens))
    if not snipers:
        return 0
    lines = 0
    for sniper in chess.scan_forward(snipers):
        lines |= chess.between(king, sniper)
    pinned = 0
    for square in chess.scan_forward(board.occupied_co[color] & lines):
        if board.is_pinned(color, square):
            pinned |= chess.BB_SQUARES[square]
    return pinned


def pin(board: chess.Board, moves: list[chess.Move]) -> np.ndarray:
    return _flag(any(_pinned_pieces(board, color) for color in (chess.WHITE, chess.BLACK)))


def legal_en_passant(board: chess.Board, moves: list[chess.Move]) -> np.ndarray:
    return _flag(board.has_legal_en_passant())


def ambiguous_moves(board: chess.Board, moves: list[chess.Move]) -> np.ndarray:
    # Two same-type pieces that can legally reach one square; pawn captures included. Promotion
    # moves of one pawn share a from-square, so they do not count. (The reference asks whether the
    # from-squares differ in file or in rank: two distinct squares always do.)
    source = {}
    for move in moves:
        reached = (board.piece_type_at(move.from_square), move.to_square)
        if source.setdefault(reached, move.from_square) != move.from_square:
            return _flag(True)
    return _flag(False)


def _squares(mask: int) -> np.ndarray:
    """A 64-bit square set as 64 flags, a1 first."""
    return np.unpackbits(np.array([mask], dtype="<u8").view(np.uint8), bitorder="little")


def threatened_squares(board: chess.Board, moves: list[chess.Move]) -> np.ndarray:
    # The reference fixes the attacker as Black: at the dots White is to move, so these are "theirs".
    # A square is attacked by Black (is_attacked_by) exactly when some black piece's attacks reach it.
    mask = 0
    for square in chess.scan_forward(board.occupied_co[chess.BLACK]):
        mask |= board.attacks_mask(square)
    return _squares(mask)


def legal_moves(board: chess.Board, moves: list[chess.Move]) -> np.ndarray:
    # The reference keeps only White's moves: at the dots those are the side to move's.
    mask = 0
    for move in moves:
        if board.color_at(move.from_square) == chess.WHITE:
            mask |= chess.BB_SQUARES[move.to_square]
    return _squares(mask)


STRATEGY_FUNCTIONS = {
    f.__name__: f for f in (check, can_check, has_queen, can_capture_queen, bishop_pair, castling_rights,
                            kingside_castling, queenside_castling, fork, pin, legal_en_passant,
                            ambiguous_moves, threatened_squares, legal_moves)
}
STRATEGY_SIZES = {name: (64 if name in ("threatened_squares", "legal_moves") else 1) for name in STRATEGY_FUNCTIONS}


def strategy_bsps(board: chess.Board) -> dict[str, np.ndarray]:
    """Every strategy function's BSPs of one position, its legal moves generated once."""
    moves = list(board.legal_moves)
    return {name: f(board, moves) for name, f in STRATEGY_FUNCTIONS.items()}
