"""Board-state functions on hand-set positions (docs/chess.md section 5 and the reference quirks of section 13)."""

import chess
import numpy as np

from tasks.chess import board_state as bs


def bsp_index(square: str, value: int) -> int:
    cls = value + 6
    kept = cls if cls < bs.BLANK_CLASS else cls - 1
    return chess.parse_square(square) * 12 + kept


def test_initial_position_is_entirely_masked():
    assert bs.board_state(chess.Board()).sum() == 0
    assert bs.board_state(chess.Board()).shape == (768,)


def test_after_e4_only_the_moved_pawn_is_a_bsp():
    board = chess.Board()
    board.push_san("e4")
    state = bs.board_state(board)
    assert state.sum() == 1
    assert state[bsp_index("e4", 1)] == 1


def test_mask_is_by_square_piece_and_colour_not_identity():
    # The g1 knight travelled to b1 (b1's own knight went to c3): b1 still reads as "initial".
    board = chess.Board("rnbqkbnr/pppppppp/8/8/8/2N5/PPPPPPPP/RNBQKB1R w KQkq - 0 1")
    state = bs.board_state(board)
    assert state[bsp_index("b1", 2)] == 0
    assert state[bsp_index("c3", 2)] == 1
    assert state.sum() == 1  # g1 is empty: blank, which is dropped


def test_black_piece_classes_are_negative():
    board = chess.Board("4k3/8/8/3q4/8/8/8/4K3 w - - 0 1")
    state = bs.board_state(board)
    assert state[bsp_index("d5", -5)] == 1
    # kings on e1/e8 are initial-position pieces: masked
    assert state.sum() == 1


def test_fork_of_two_rooks_by_two_knights_counts():
    board = chess.Board("r7/7k/1N6/8/8/4K1N1/8/7r w - - 0 1")
    assert bs.fork(board)[0] == 1


def test_knight_on_rook_and_queen_is_not_a_fork_in_the_reference():
    # One target type per (attacker, target) pair: rook + queen are two different types.
    board = chess.Board("7k/3r1q2/8/4N3/8/8/8/6K1 w - - 0 1")
    assert bs.fork(board)[0] == 0


def test_knight_on_two_rooks_is_a_fork_and_a_pinned_knight_is_not():
    assert bs.fork(chess.Board("7k/3r1r2/8/4N3/8/8/8/6K1 w - - 0 1"))[0] == 1
    # Same knight, pinned against its king by a black bishop on b8... a8-h1 diagonal: use a rook on e8.
    pinned = chess.Board("4r2k/3r1r2/8/4N3/8/8/8/4K3 w - - 0 1")
    assert pinned.is_pinned(chess.WHITE, chess.E5)
    assert bs.fork(pinned)[0] == 0


def test_absolute_pin_of_either_colour():
    assert bs.pin(chess.Board("4k3/8/2n5/1B6/8/8/8/4K3 w - - 0 1"))[0] == 1   # black knight pinned
    assert bs.pin(chess.Board("7k/8/2n5/1B6/8/8/8/4K3 w - - 0 1"))[0] == 0    # no king behind it
    assert bs.pin(chess.Board("4k3/4r3/8/8/8/8/4N3/4K3 w - - 0 1"))[0] == 1   # white knight pinned


def test_check_can_check_and_queen_functions():
    board = chess.Board("4k3/8/8/8/8/8/4r3/4K3 w - - 0 1")
    assert bs.check(board)[0] == 1
    assert bs.has_queen(board)[0] == 0
    start = chess.Board()
    assert bs.check(start)[0] == 0 and bs.can_check(start)[0] == 0 and bs.has_queen(start)[0] == 1
    assert bs.can_check(chess.Board("4k3/8/8/8/8/8/8/R3K3 w - - 0 1"))[0] == 1
    assert bs.can_capture_queen(chess.Board("4k3/8/8/3q4/8/8/8/3RK3 w - - 0 1"))[0] == 1
    assert bs.can_capture_queen(chess.Board("4k3/8/8/3q4/8/8/8/2R1K3 w - - 0 1"))[0] == 0


def test_castling_bishop_pair_en_passant():
    start = chess.Board()
    assert bs.castling_rights(start)[0] == bs.kingside_castling(start)[0] == bs.queenside_castling(start)[0] == 1
    assert bs.bishop_pair(start)[0] == 1
    board = chess.Board("4k3/8/8/3pP3/8/8/8/4K3 w - d6 0 1")
    assert bs.legal_en_passant(board)[0] == 1
    assert bs.castling_rights(board)[0] == 0


def test_ambiguous_moves_include_pawn_captures_but_not_promotions():
    assert bs.ambiguous_moves(chess.Board("4k3/8/8/4p3/3P1P2/8/8/4K3 w - - 0 1"))[0] == 1  # dxe5 / fxe5
    assert bs.ambiguous_moves(chess.Board("1n2k3/P7/8/8/8/8/8/4K3 w - - 0 1"))[0] == 0     # a8=Q/R/B/N, axb8=...
    assert bs.ambiguous_moves(chess.Board("4k3/8/8/8/8/8/4K3/R6R w - - 0 1"))[0] == 1      # both rooks reach b1..g1


def test_threatened_squares_and_legal_moves_in_the_initial_position():
    start = chess.Board()
    threats = bs.threatened_squares(start)
    assert threats[chess.E6] == 1 and threats[chess.E4] == 0 and threats.shape == (64,)
    moves = bs.legal_moves(start)
    assert moves.sum() == 16  # a3..h3 and a4..h4; the knights' squares are among them
    assert np.array_equal(np.nonzero(moves)[0], np.arange(16, 32))


def test_all_fourteen_strategy_functions_are_present():
    assert len(bs.STRATEGY_FUNCTIONS) == 14
    assert sum(bs.STRATEGY_SIZES.values()) == 12 + 128
