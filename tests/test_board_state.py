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
    assert bs.strategy_bsps(board)["fork"][0] == 1


def test_knight_on_rook_and_queen_is_not_a_fork_in_the_reference():
    # One target type per (attacker, target) pair: rook + queen are two different types.
    board = chess.Board("7k/3r1q2/8/4N3/8/8/8/6K1 w - - 0 1")
    assert bs.strategy_bsps(board)["fork"][0] == 0


def test_knight_on_two_rooks_is_a_fork_and_a_pinned_knight_is_not():
    assert bs.strategy_bsps(chess.Board("7k/3r1r2/8/4N3/8/8/8/6K1 w - - 0 1"))["fork"][0] == 1
    # Same knight, pinned against its king by a black bishop on b8... a8-h1 diagonal: use a rook on e8.
    pinned = chess.Board("4r2k/3r1r2/8/4N3/8/8/8/4K3 w - - 0 1")
    assert pinned.is_pinned(chess.WHITE, chess.E5)
    assert bs.strategy_bsps(pinned)["fork"][0] == 0


def test_absolute_pin_of_either_colour():
    assert bs.strategy_bsps(chess.Board("4k3/8/2n5/1B6/8/8/8/4K3 w - - 0 1"))["pin"][0] == 1   # black knight pinned
    assert bs.strategy_bsps(chess.Board("7k/8/2n5/1B6/8/8/8/4K3 w - - 0 1"))["pin"][0] == 0    # no king behind it
    assert bs.strategy_bsps(chess.Board("4k3/4r3/8/8/8/8/4N3/4K3 w - - 0 1"))["pin"][0] == 1   # white knight pinned


def test_check_can_check_and_queen_functions():
    board = chess.Board("4k3/8/8/8/8/8/4r3/4K3 w - - 0 1")
    assert bs.strategy_bsps(board)["check"][0] == 1
    assert bs.strategy_bsps(board)["has_queen"][0] == 0
    start = chess.Board()
    at_start = bs.strategy_bsps(start)
    assert at_start["check"][0] == 0 and at_start["can_check"][0] == 0 and at_start["has_queen"][0] == 1
    assert bs.strategy_bsps(chess.Board("4k3/8/8/8/8/8/8/R3K3 w - - 0 1"))["can_check"][0] == 1
    assert bs.strategy_bsps(chess.Board("4k3/8/8/3q4/8/8/8/3RK3 w - - 0 1"))["can_capture_queen"][0] == 1
    assert bs.strategy_bsps(chess.Board("4k3/8/8/3q4/8/8/8/2R1K3 w - - 0 1"))["can_capture_queen"][0] == 0


def test_castling_bishop_pair_en_passant():
    start = chess.Board()
    at_start = bs.strategy_bsps(start)
    assert at_start["castling_rights"][0] == at_start["kingside_castling"][0] == at_start["queenside_castling"][0] == 1
    assert at_start["bishop_pair"][0] == 1
    board = chess.Board("4k3/8/8/3pP3/8/8/8/4K3 w - d6 0 1")
    assert bs.strategy_bsps(board)["legal_en_passant"][0] == 1
    assert bs.strategy_bsps(board)["castling_rights"][0] == 0


def test_ambiguous_moves_include_pawn_captures_but_not_promotions():
    assert bs.strategy_bsps(chess.Board("4k3/8/8/4p3/3P1P2/8/8/4K3 w - - 0 1"))["ambiguous_moves"][0] == 1  # dxe5 / fxe5
    assert bs.strategy_bsps(chess.Board("1n2k3/P7/8/8/8/8/8/4K3 w - - 0 1"))["ambiguous_moves"][0] == 0     # a8=Q/R/B/N, axb8=...
    assert bs.strategy_bsps(chess.Board("4k3/8/8/8/8/8/4K3/R6R w - - 0 1"))["ambiguous_moves"][0] == 1      # both rooks reach b1..g1


def test_threatened_squares_and_legal_moves_in_the_initial_position():
    start = chess.Board()
    threats = bs.strategy_bsps(start)["threatened_squares"]
    assert threats[chess.E6] == 1 and threats[chess.E4] == 0 and threats.shape == (64,)
    moves = bs.strategy_bsps(start)["legal_moves"]
    assert moves.sum() == 16  # a3..h3 and a4..h4; the knights' squares are among them
    assert np.array_equal(np.nonzero(moves)[0], np.arange(16, 32))


def test_all_fourteen_strategy_functions_are_present():
    assert len(bs.STRATEGY_FUNCTIONS) == 14
    assert sum(bs.STRATEGY_SIZES.values()) == 12 + 128


# The strategy functions are written with bitboards for speed (every cold `make bench` labels 40,000
# positions). Below, each is checked against its plain python-chess definition, the reference's
# semantics spelled out, on every position of real engine games and on positions built for the
# special moves.

SPECIAL_POSITIONS = [
    "5k2/8/8/8/8/8/8/4K2R w K - 0 1",        # O-O gives check: the rook lands on f1
    "3k4/8/8/8/8/8/8/R3K3 w Q - 0 1",        # O-O-O gives check: the rook lands on d1
    "8/8/8/R2pP2k/8/8/8/4K3 w - d6 0 1",     # exd6 e.p. opens the fifth rank: discovered check
    "8/1P1k4/8/8/8/8/8/4K3 w - - 0 1",       # b8=N+ (and b8=Q does not check)
    "7k/8/8/8/3K4/8/1B6/8 w - - 0 1",        # the king steps off the long diagonal: discovered check
    "r3k2r/1P6/8/8/8/8/8/R3K2R w KQkq - 0 1",  # castling both ways, promotion with capture
    "4k3/8/8/8/8/8/5p2/K5Q1 b - - 0 1",      # Black to move: fxg1=Q+ and f1=Q+, the knights do not check
]


def _plain(name: str, board: chess.Board) -> np.ndarray:
    """The reference's definition of the strategy functions the bitboard versions replace."""
    if name == "can_check":
        return np.array([any(board.gives_check(m) for m in board.legal_moves)], dtype=np.uint8)
    if name == "can_capture_queen":
        target = next((sq for sq, p in board.piece_map().items()
                       if p.piece_type == chess.QUEEN and p.color != board.turn), None)
        hit = target is not None and any(m.to_square == target and board.is_capture(m) for m in board.legal_moves)
        return np.array([hit], dtype=np.uint8)
    if name == "fork":
        me = board.turn
        for attacker_type, target_types in bs.FORK_TARGETS.items():
            attackers = [sq for sq in board.pieces(attacker_type, me) if not board.is_pinned(me, sq)]
            for target_type in target_types:
                targets = board.pieces(target_type, not me)
                if sum(len(board.attacks(sq) & targets) for sq in attackers) >= 2:
                    return np.array([1], dtype=np.uint8)
        return np.array([0], dtype=np.uint8)
    if name == "pin":
        return np.array([any(board.is_pinned(c, sq) for c in chess.COLORS
                             for sq in chess.SquareSet(board.occupied_co[c]))], dtype=np.uint8)
    if name == "ambiguous_moves":
        sources = {}
        for m in board.legal_moves:
            sources.setdefault((board.piece_type_at(m.from_square), m.to_square), []).append(m.from_square)
        return np.array([any(len({chess.square_file(s) for s in f}) > 1 or len({chess.square_rank(s) for s in f}) > 1
                             for f in sources.values())], dtype=np.uint8)
    if name == "threatened_squares":
        return np.array([board.is_attacked_by(chess.BLACK, sq) for sq in chess.SQUARES], dtype=np.uint8)
    if name == "legal_moves":
        out = np.zeros(64, dtype=np.uint8)
        for m in board.legal_moves:
            if board.color_at(m.from_square) == chess.WHITE:
                out[m.to_square] = 1
        return out
    raise KeyError(name)


REWRITTEN = ("can_check", "can_capture_queen", "fork", "pin", "ambiguous_moves", "threatened_squares", "legal_moves")


def _every_position(n_games: int, n_random: int = 40):
    """The special positions, every position of `n_games` engine games, and of `n_random` games of
    random legal moves (seeded) that prefer castling, en passant and promotion when they can: engine
    games rarely reach those, and a random game reaches positions with either side to move."""
    import random

    from tasks.chess.corpus import read_split, san_moves

    for fen in SPECIAL_POSITIONS:
        yield chess.Board(fen)
    for game in read_split("probe_test")[:n_games]:
        board = chess.Board()
        for san in san_moves(game):
            board.push_san(san)
            yield board.copy(stack=False)
    rng = random.Random(0)
    for _ in range(n_random):
        board = chess.Board()
        while not board.is_game_over() and board.ply() < 200:
            moves = list(board.legal_moves)
            rare = [m for m in moves if m.promotion or board.is_castling(m) or board.is_en_passant(m)]
            board.push(rng.choice(rare if rare and rng.random() < 0.7 else moves))
            yield board.copy(stack=False)


def test_bitboard_strategy_functions_equal_their_plain_definitions():
    positions, checks = 0, 0
    for board in _every_position(25):
        got = bs.strategy_bsps(board)
        for name in REWRITTEN:
            assert np.array_equal(got[name], _plain(name, board)), (name, board.fen())
        positions += 1
        checks += int(got["can_check"][0])
    assert positions > 5000 and 0 < checks < positions  # both answers occur


def test_gives_check_equals_python_chess_on_every_legal_move():
    moves, giving = 0, 0
    for board in _every_position(25):
        for move in board.legal_moves:
            expected = board.gives_check(move)
            assert bs.gives_check(board, move) == expected, (board.fen(), move.uci())
            moves += 1
            giving += expected
    assert giving > 1000 and moves > 100_000


def test_special_moves_that_give_check():
    def checking(fen: str) -> set[str]:
        board = chess.Board(fen)
        return {m.uci() for m in board.legal_moves if bs.gives_check(board, m)}

    assert "e1g1" in checking(SPECIAL_POSITIONS[0])
    assert "e1c1" in checking(SPECIAL_POSITIONS[1])
    assert "e5d6" in checking(SPECIAL_POSITIONS[2])
    assert "b7b8n" in checking(SPECIAL_POSITIONS[3]) and "b7b8q" not in checking(SPECIAL_POSITIONS[3])
    assert {"d4c4", "d4d3", "d4c5"} <= checking(SPECIAL_POSITIONS[4]) and "d4e5" not in checking(SPECIAL_POSITIONS[4])
    assert checking(SPECIAL_POSITIONS[6]) == {"f2g1q", "f2g1r", "f2f1q", "f2f1r"}
