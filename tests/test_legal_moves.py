"""Greedy move decoding and the legal-move rate."""

import torch

from adapters.dense import DenseAdapter
from models.gpt import GPT
from tasks.chess.corpus import read_split
from tasks.chess.legal_moves import greedy_moves, legal_move_rate
from tasks.chess.position_labels import boards_at_positions
from tasks.chess.positions import build_positions
from tasks.chess.task import ChessTask
from tasks.chess.tokenizer import CHAR_TO_ID


class ScriptedE4(torch.nn.Module):
    """A fake model for the decoding glue: after '.', write 'e'; after 'e', '4'; after '4', a space."""

    class cfg:
        n_ctx = 256

    def __init__(self):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))
        self.next = {CHAR_TO_ID["."]: CHAR_TO_ID["e"], CHAR_TO_ID["e"]: CHAR_TO_ID["4"], CHAR_TO_ID["4"]: CHAR_TO_ID[" "]}

    def forward(self, tokens):
        logits = torch.zeros(*tokens.shape, 32)
        for src, dst in self.next.items():
            logits[..., dst] += (tokens == src).float()
        return logits


def test_scripted_model_writes_e4_and_its_legality_is_counted():
    games = read_split("probe_test")[:3]
    positions = build_positions(games, workers=1)
    assert greedy_moves(DenseAdapter(ScriptedE4()), [";1.", ";1.d4 d5 2."]) == ["e4", "e4"]
    expected = []
    for game in positions.games:
        for board in boards_at_positions(game):
            try:
                board.parse_san("e4")
                expected.append(1)
            except ValueError:
                expected.append(0)
    assert legal_move_rate(DenseAdapter(ScriptedE4()), positions, n_games=3) == sum(expected) / len(expected)
    assert 0 < sum(expected) < len(expected)  # the case is not degenerate


def test_batched_greedy_decoding_equals_one_prefix_at_a_time():
    torch.manual_seed(0)
    model = DenseAdapter(GPT(ChessTask.dense_config("tiny")).eval())
    prefixes = [";1.", ";1.e4 e5 2.", ";1.d4 Nf6 2.c4 e6 3."]
    batched = greedy_moves(model, prefixes)
    assert batched == [greedy_moves(model, [p])[0] for p in prefixes]


def test_the_boards_scored_are_those_before_whites_moves_by_hand():
    boards = boards_at_positions(";1.e4 e5 2.Nf3 Nc6 3.", 3)
    assert [b.board_fen() for b in boards] == [
        "rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR",            # before 1.
        "rnbqkbnr/pppp1ppp/8/4p3/4P3/8/PPPP1PPP/RNBQKBNR",        # after 1.e4 e5
        "r1bqkbnr/pppp1ppp/2n5/4p3/4P3/5N2/PPPP1PPP/RNBQKB1R",    # after 2.Nf3 Nc6
    ]
    assert all(b.turn for b in boards)  # White to move at each
    legal = []
    for board in boards:
        try:
            board.parse_san("e4")
            legal.append(True)
        except ValueError:
            legal.append(False)
    assert legal == [True, False, False]  # e4 is White's own pawn's square after the first move
