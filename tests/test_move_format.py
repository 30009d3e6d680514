"""The move format: its fixed vocabulary, encoding, evaluation positions, legal-move rate, and the
refusals of a corpus or checkpoint that does not fit it."""

import lzma

import chess
import pytest
import torch

from adapters.dense import DenseAdapter
from core.errors import BenchError
from tasks.chess.corpus import read_split
from tasks.chess.formats import FORMATS, flat_corpus, game_move_ids, san_moves
from tasks.chess.legal_moves import legal_move_rate
from tasks.chess.move_vocab import BOS_ID, PAD_ID, token_ids, vocabulary
from tasks.chess.position_labels import boards_at_positions
from tasks.chess.positions import build_position_sets, build_positions


def test_vocabulary_is_every_queen_line_and_knight_move_plus_promotions():
    vocab = vocabulary()
    # 64 squares: queen lines 1,456 moves, knight 336; promotions 2 colours x 22 pawn moves x 4 pieces.
    assert len(vocab) == 2 + 1456 + 336 + 176
    assert vocab[PAD_ID] == "<pad>" and vocab[BOS_ID] == "<bos>"
    ids = token_ids()
    for move in ("e2e4", "g1f3", "e1g1", "e8c8", "a7b8q", "h2h1n", "b1a3", "a1h8"):
        assert move in ids
    for impossible in ("a1b4", "e2e2", "a3a1q", "e4e5q", "a7b8k", "a7c8q"):
        assert impossible not in ids
    assert len(set(vocab)) == len(vocab)


def test_every_legal_move_of_real_games_is_in_the_vocabulary():
    ids = token_ids()
    for game in read_split("probe_test")[:30]:
        board = chess.Board()
        for san in san_moves(game):
            assert all(m.uci() in ids for m in board.legal_moves)
            board.push_san(san)


def test_a_game_encodes_as_bos_then_one_uci_move_per_ply():
    fmt = FORMATS["moves"]
    ids = token_ids()
    # 3.O-O is illegal here (f1 bishop in the way): only the first four plies fit the check below.
    assert game_move_ids(";1.e4 e5 2.Nf3 Nc6") == [ids["e2e4"], ids["e7e5"], ids["g1f3"], ids["b8c6"]]
    with pytest.raises(ValueError, match="ply 5: 'O-O'"):
        game_move_ids(";1.e4 e5 2.Nf3 Nc6 3.O-O")
    short, short_len = fmt.encode([";1.d4 d5"], 5)
    assert short.tolist() == [[BOS_ID, ids["d2d4"], ids["d7d5"], PAD_ID, PAD_ID]] and short_len.tolist() == [3]


def test_a_replayed_game_is_remembered_but_its_illegal_move_is_refused_every_time():
    game = ";1.e4 e5 2.Nf3 Nc6 3.O-O"  # ply 5 illegal
    for _ in range(2):  # the second call comes from the replay cache and must refuse as the first
        with pytest.raises(ValueError, match="ply 5: 'O-O'"):
            game_move_ids(game)
    # An illegal move past the limit is never reached, so it is no error (encode cuts games this way).
    assert len(game_move_ids(game, limit=4)) == 4 and game_move_ids(game, limit=0) == []
    with pytest.raises(ValueError, match="ply 5"):
        game_move_ids(game, limit=5)
    with pytest.raises(ValueError, match="limit must be at least 0"):
        game_move_ids(game, limit=-1)


def test_position_sets_equal_positions_built_one_at_a_time():
    # Two lists and a repeat, one labelled (cached) beforehand: the missing labels are computed together.
    a, b = read_split("probe_test")[:3], read_split("probe_test")[3:5]
    build_positions(a, workers=1)
    together = build_position_sets([a, b, a], workers=1, fmt_name="moves")
    for got, games in zip(together, [a, b, a]):
        alone = build_positions(games, workers=1, fmt_name="moves")
        assert got.games == alone.games and torch.equal(got.tokens, alone.tokens)
        assert (got.classes == alone.classes).all() and (got.board_state == alone.board_state).all()
        assert (got.token_index == alone.token_index).all() and (got.game_index == alone.game_index).all()
        assert all((got.strategy[k] == alone.strategy[k]).all() for k in alone.strategy)


def test_labels_started_early_are_the_labels_computed_in_place(tmp_path, monkeypatch):
    from tasks.chess import positions

    games = read_split("probe_test")[:25]  # over 20: worker processes, as in a real run
    monkeypatch.setattr(positions, "CACHE", tmp_path / "in-place")
    in_place = positions.build_positions(games, workers=2, fmt_name="moves")
    monkeypatch.setattr(positions, "CACHE", tmp_path / "early")
    positions.prefetch_labels([games], workers=2)
    assert positions._prefetch is not None  # started, in the background
    done = positions._wait_for_prefetch()
    assert done.error is None and len(list((tmp_path / "early").rglob("labels-*.npz"))) == 1
    positions._prefetch = done  # handed back, so that build_positions waits for it as in a run

    def computing_again(missing, workers):
        assert not missing, "labels computed again: the early ones were not used"
        return {}

    monkeypatch.setattr(positions, "_compute_labels", computing_again)
    early = positions.build_positions(games, workers=2, fmt_name="moves")
    assert positions._prefetch is None
    assert (early.classes == in_place.classes).all() and (early.board_state == in_place.board_state).all()
    assert all((early.strategy[k] == in_place.strategy[k]).all() for k in in_place.strategy)


def test_an_illegal_game_labelled_early_is_still_refused_naming_it(tmp_path, monkeypatch):
    from tasks.chess import positions

    games = read_split("probe_test")[:25]
    games[7] = games[7].replace(";1.", ";1.Ke2 ", 1)  # the king walks into its own pawn
    monkeypatch.setattr(positions, "CACHE", tmp_path)
    positions.prefetch_labels([games], workers=2)
    with pytest.raises(BenchError, match="evaluation game 8"):
        positions.build_positions(games, workers=2, fmt_name="moves")
    assert positions._prefetch is None


def test_early_labels_that_fail_on_legal_games_raise_their_error(tmp_path, monkeypatch):
    from tasks.chess import positions

    def full_disk(*args):
        raise OSError("No space left on device")

    games = read_split("probe_test")[:25]
    monkeypatch.setattr(positions, "CACHE", tmp_path)
    monkeypatch.setattr(positions, "_compute_labels", full_disk)
    positions.prefetch_labels([games], workers=2)
    with pytest.raises(OSError, match="No space left"):
        positions.build_positions(games, workers=2, fmt_name="moves")


def test_positions_are_the_same_boards_in_both_formats_at_token_2n():
    games = read_split("probe_test")[:5]
    chars, moves = build_positions(games, workers=1), build_positions(games, workers=1, fmt_name="moves")
    assert (chars.classes == moves.classes).all()
    assert moves.token_index.tolist() == [2 * n for n in range(20)] * 5
    assert [chars.games[0][i] for i in chars.token_index[:20]] == ["."] * 20
    # The tokens before position n replay to the board there.
    vocab = vocabulary()
    for n, board in enumerate(boards_at_positions(games[0])):
        replay = chess.Board()
        for t in moves.tokens[0, 1:2 * n + 1].tolist():
            replay.push_uci(vocab[t])
        assert replay.board_fen() == board.board_fen()


class _Scripted(torch.nn.Module):
    """A fake model for the glue: always predicts the same token."""

    def __init__(self, token: int):
        super().__init__()
        self.anchor, self.token = torch.nn.Parameter(torch.zeros(1)), token

        class cfg:
            n_ctx = 64
        self.cfg = cfg

    def forward(self, tokens):
        logits = torch.zeros(*tokens.shape, len(vocabulary()))
        logits[..., self.token] = 1.0
        return logits


def test_legal_move_rate_counts_the_greedy_token_against_the_board():
    games = read_split("probe_test")[:4]
    positions = build_positions(games, workers=1, fmt_name="moves")
    boards = [b for g in positions.games for b in boards_at_positions(g)]
    expected = sum(chess.Move.from_uci("g1f3") in b.legal_moves for b in boards) / len(boards)
    assert 0 < expected < 1  # the case is not degenerate
    assert legal_move_rate(DenseAdapter(_Scripted(token_ids()["g1f3"])), positions, n_games=4) == expected
    assert legal_move_rate(DenseAdapter(_Scripted(PAD_ID)), positions, n_games=4) == 0.0


def _xz(path, text: str):
    with lzma.open(path, "wt", encoding="utf-8") as f:
        f.write(text)
    return path


def test_a_corpus_with_an_illegal_move_is_refused_naming_file_line_and_move(tmp_path):
    path = _xz(tmp_path / "bad.txt.xz", ";1.e4 e5 2.Nf3\n;1.d4 d5 2.Ke8\n")
    with pytest.raises(BenchError, match=r"bad\.txt\.xz:2: ply 3: 'Ke8' is not a legal move"):
        flat_corpus(FORMATS["moves"], path)


def test_a_corpus_of_english_is_refused_in_both_formats(tmp_path):
    path = _xz(tmp_path / "prose.txt.xz", ";1.e4 e5\nThe quick brown fox jumps.\n")
    with pytest.raises(BenchError, match=r"prose\.txt\.xz:2: character 'T' is not in the chess vocabulary"):
        flat_corpus(FORMATS["chars"], path)
    with pytest.raises(BenchError, match=r"prose\.txt\.xz:2: ply 1: 'The' is not a legal move"):
        flat_corpus(FORMATS["moves"], path)


def test_a_corpus_file_that_is_not_xz_or_empty_is_one_clear_error(tmp_path):
    plain = tmp_path / "plain.txt.xz"
    plain.write_text(";1.e4 e5\n")
    with pytest.raises(BenchError, match="not a readable xz chess corpus"):
        flat_corpus(FORMATS["moves"], plain)
    with pytest.raises(BenchError, match="holds no games"):
        flat_corpus(FORMATS["chars"], _xz(tmp_path / "empty.txt.xz", ""))


def test_flat_corpus_packs_games_with_their_starts(tmp_path):
    path = _xz(tmp_path / "two.txt.xz", ";1.e4 e5\n;1.d4\n")
    tokens, starts = flat_corpus(FORMATS["moves"], path)
    ids = token_ids()
    assert tokens.tolist() == [BOS_ID, ids["e2e4"], ids["e7e5"], BOS_ID, ids["d2d4"]]
    assert starts.tolist() == [0, 3]
    chars, char_starts = flat_corpus(FORMATS["chars"], path)
    assert len(chars) == len(";1.e4 e5 ;1.d4 ") and char_starts.tolist() == [0, 9]


def test_a_chars_checkpoint_under_a_moves_preset_names_both_formats(tmp_path, monkeypatch):
    from bench import model_store, registry
    from models.checkpoint import save_model
    from models.gpt import GPT
    from tasks.chess.task import ChessTask

    monkeypatch.setattr("core.paths.CHECKPOINTS", tmp_path)
    save_model(tmp_path / "chess" / "dense-tiny-moves", GPT(ChessTask.dense_config("tiny")), {"fingerprint": {}})
    with pytest.raises(BenchError, match="trained in the 'chars' token format, but preset tiny-moves reads 'moves' "
                                         "now; delete dense-tiny-moves.json and dense-tiny-moves.safetensors .* to "
                                         "train it again in 'moves'"):
        model_store.load_or_train(registry.model_adapter("dense"), ChessTask, "tiny-moves", 0, "cpu",
                                  train_if_missing=False)


def test_resuming_with_another_format_data_or_vocabulary_is_refused_naming_the_field(tmp_path):
    from models.gpt import GPT
    from models.train import _load_state, _optimizer, _save_state
    from tasks.chess.task import ChessTask

    model = GPT(ChessTask.dense_config("tiny-moves"))
    recipe = ChessTask.train_config("tiny-moves", 0)
    saved = {"format": "moves", "data": "d", "model_config": model.cfg.to_json()}
    _save_state(tmp_path, model, _optimizer(model, recipe), 5, saved, [], 0.0)
    refusals = [  # (what the resumed run has now, the field the refusal must name)
        ({k: v for k, v in saved.items() if k != "format"}, "format differs \\(checkpoint 'moves', now 'chars', "
                                                            "the default, not recorded\\)"),
        ({**saved, "data": "e"}, "data differs \\(checkpoint 'd', now 'e'\\)"),
        ({**saved, "model_config": {**saved["model_config"], "vocab_size": model.cfg.vocab_size + 1}},
         f"model_config.vocab_size differs \\(checkpoint {model.cfg.vocab_size}, now {model.cfg.vocab_size + 1}\\)"),
    ]
    unrecorded = {"format": ChessTask.untagged_format("tiny")}  # what bench/model_store.py passes
    for now, named in refusals:
        with pytest.raises(BenchError, match=f"cannot resume {tmp_path}: {named}; delete {tmp_path} to start over"):
            _load_state(tmp_path, model, _optimizer(model, recipe), now, unrecorded)
    assert _load_state(tmp_path, model, _optimizer(model, recipe), saved)[0] == 5  # the same: it resumes


@pytest.mark.parametrize("preset", ["tiny", "tiny-moves"])
def test_validation_tokens_are_the_tail_of_the_packed_train_split_read_alone(preset):
    """Evaluation tokenizes only the held-out games; they must pack exactly as the tail of the whole
    split's flat corpus, as training holds them out."""
    import numpy as np

    from tasks.chess.corpus import EMBEDDED_DIR, SPLIT_FILES
    from tasks.chess.formats import PackedStream
    from tasks.chess.presets import PRESETS
    from tasks.chess.task import ChessTask

    p = PRESETS[preset]
    tokens, starts = flat_corpus(FORMATS[p.format], EMBEDDED_DIR / SPLIT_FILES["train"])
    cut = int(starts[-p.n_val_games])
    tail = PackedStream(torch.from_numpy(tokens[cut:].astype(np.int64)),
                        torch.from_numpy(starts[-p.n_val_games:] - cut), p.n_ctx, seed=10_001)
    expected = torch.cat([tail.batch(step, 16) for step in range(max(1, p.n_val_games // 16))])
    assert torch.equal(ChessTask.validation_tokens(preset, 1), expected)
