"""The linear probe on a case a linear map solves exactly, and the training curve's point built on it."""

import pytest
import torch

from models.gpt import GPT
from tasks.chess import training_curve
from tasks.chess.corpus import read_split
from tasks.chess.positions import build_positions
from tasks.chess.probe import fit_probe, masked_board_f1, predict_classes
from tasks.chess.task import ChessTask


def test_a_probe_recovers_classes_that_are_one_hot_in_the_input():
    # 64 samples; square s of sample i holds class (i + s) % 13, and the input is the one-hot of
    # sample i's class on square 0, so every square's class is a fixed permutation of the input.
    n = 64
    first = torch.arange(n) % 13
    classes = (first[:, None] + torch.arange(64)[None, :]) % 13
    x = torch.nn.functional.one_hot(first, 13).float()
    probe = fit_probe(x, classes)
    assert torch.equal(predict_classes(probe, x), classes)
    # Exact predictions; f1_score's epsilon against a zero division keeps it a hair under 1.
    assert masked_board_f1(predict_classes(probe, x), classes) == pytest.approx(1.0, abs=1e-6)


def test_the_board_f1_counts_only_pieces_off_their_starting_squares():
    import chess

    from tasks.chess.board_state import BLANK_CLASS, piece_classes

    board = chess.Board()
    for move in ("e4", "d5"):
        board.push_san(move)
    truth = torch.from_numpy(piece_classes(board).astype("int64"))[None]
    # Counted (masked BSPs): the white pawn on e4 and the black pawn on d5; blanks and every piece on
    # its starting square are not. The prediction misses d5 (blank there: FN 1) and puts a white pawn
    # back on e2, a starting square, which the mask drops (no FP). TP 1 FP 0 FN 1 -> F1 2/3.
    pred = truth.clone()
    pred[0, chess.D5] = BLANK_CLASS
    pred[0, chess.E2] = BLANK_CLASS + 1
    assert masked_board_f1(pred, truth) == pytest.approx(2 / 3, abs=1e-6)


def test_a_probe_is_the_same_for_the_same_seed():
    x = torch.randn(50, 8, generator=torch.Generator().manual_seed(1))
    classes = torch.randint(0, 13, (50, 64), generator=torch.Generator().manual_seed(2))
    a, b = fit_probe(x, classes, max_iter=5), fit_probe(x, classes, max_iter=5)
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    # the seed is what fixes it: another seed starts elsewhere and, five iterations in, is elsewhere
    other = fit_probe(x, classes, max_iter=5, seed=1)
    assert not torch.equal(a[2], other[2])


def test_the_probe_loss_is_the_per_square_cross_entropy_of_every_row():
    # fit_probe feeds the logits as (n, classes, squares) for speed; its loss must be the straightforward
    # mean over (sample, square) rows of a 13-way cross-entropy, so L-BFGS from the same start lands on
    # the same weights: bit for bit on some CPUs, within float rounding on others (an AMD EPYC sums the
    # softmax along the other axis in another order: 7e-9 apart on weights of 0.07).
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(40, 6, generator=gen)
    classes = torch.randint(0, 13, (40, 64), generator=gen)
    fast = fit_probe(x, classes, max_iter=3)
    mean, std = x.mean(0), x.std(0) + 1e-6
    z = (x - mean) / std
    weight = (torch.randn(6, 64 * 13, generator=torch.Generator().manual_seed(0)) * 0.01).requires_grad_()
    bias = torch.zeros(64 * 13, requires_grad=True)
    opt = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=3, history_size=20, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-6, tolerance_change=1e-9)

    def rows_closure():
        opt.zero_grad()
        logits = (z @ weight + bias).view(-1, 13)
        loss = torch.nn.functional.cross_entropy(logits, classes.reshape(-1)) * 64 + 1e-4 * weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(rows_closure)
    assert torch.allclose(fast[2], weight.detach(), rtol=0, atol=1e-7)
    assert torch.allclose(fast[3], bias.detach(), rtol=0, atol=1e-7)
    assert not torch.equal(weight.detach(), torch.randn(6, 64 * 13, generator=torch.Generator().manual_seed(0)) * 0.01)


def test_a_curve_point_gives_every_layer_an_f1_and_restores_the_training_mode(monkeypatch):
    positions = (build_positions(read_split("probe_train")[:6], workers=1),
                 build_positions(read_split("probe_test")[:6], workers=1))
    monkeypatch.setattr(training_curve, "_curve_positions", lambda fmt_name, n_games: positions)
    torch.manual_seed(0)
    model = GPT(ChessTask.dense_config("tiny")).train()
    point = training_curve.curve_point(model, step=0)
    layers = point["probe_f1_by_layer"]
    assert sorted(layers) == [str(i) for i in range(model.cfg.n_layers)]
    assert all(0.0 <= f1 <= 1.0 for f1 in layers.values())
    assert model.training
