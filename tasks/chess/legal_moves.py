"""Legal-move rate, as Karvonen reports it: at each evaluation position (White to move), the share
of the model's greedy next moves that are legal there. In the character format the move is decoded
character by character up to the next space; in the move format it is the one greedy next token."""

from __future__ import annotations

import torch

from core.progress import progress
from tasks.chess.position_labels import boards_at_positions
from tasks.chess.positions import Positions
from tasks.chess.tokenizer import CHAR_TO_ID, VOCAB, encode_batch

MAX_MOVE_CHARS = 8  # the longest SAN, like "exd8=Q+", is 7 characters, plus the closing space
SPACE = CHAR_TO_ID[" "]


@torch.no_grad()
def greedy_moves(adapter, prefixes: list[str]) -> list[str]:
    """The characters the model writes after each prefix, greedily, until a space (`adapter`: a
    FeatureAdapter, of which this reads logits, n_ctx and device)."""
    width = max(len(p) for p in prefixes) + MAX_MOVE_CHARS
    tokens = encode_batch(prefixes, width).to(adapter.device)
    lengths = torch.tensor([len(p) for p in prefixes], device=tokens.device)
    rows = torch.arange(len(prefixes), device=tokens.device)
    done = torch.zeros(len(prefixes), dtype=torch.bool, device=tokens.device)
    out = [[] for _ in prefixes]
    for step in range(MAX_MOVE_CHARS):
        logits = adapter.logits(tokens[:, : int(lengths.max()) + step])
        nxt = logits[rows, lengths + step - 1].argmax(-1)
        tokens[rows, lengths + step] = nxt
        for i in torch.nonzero(~done).flatten().tolist():
            if int(nxt[i]) == SPACE:
                done[i] = True
            else:
                out[i].append(VOCAB[int(nxt[i])])
        if done.all():
            break
    return ["".join(chars) for chars in out]


def legal_move_rate(adapter, positions: Positions, n_games: int, batch_size: int = 100) -> float:
    if positions.format == "moves":
        return _legal_share_moves(adapter, positions, n_games, batch_size)
    prefixes, boards = [], []
    for game_index in range(min(n_games, len(positions.games))):
        game = positions.games[game_index]
        dots = positions.token_index[positions.game_index == game_index]
        # Only dots whose decoded move still fits in the context window.
        dots = [d for d in dots if d + 1 + MAX_MOVE_CHARS <= adapter.n_ctx]
        prefixes += [game[: d + 1] for d in dots]
        boards += boards_at_positions(game, len(dots))
    legal = 0
    for start in progress(range(0, len(prefixes), batch_size), desc="legal moves", unit="batch"):
        moves = greedy_moves(adapter, prefixes[start:start + batch_size])
        for move, board in zip(moves, boards[start:start + batch_size]):
            try:
                board.parse_san(move)
                legal += 1
            except ValueError:
                pass
    return legal / len(prefixes)


@torch.no_grad()
def _legal_share_moves(adapter, positions: Positions, n_games: int, batch_size: int) -> float:
    """One forward pass over each game's tokens; the argmax at each position is its move."""
    import chess

    from tasks.chess.move_vocab import vocabulary

    vocab, legal, total = vocabulary(), 0, 0
    n_games = min(n_games, len(positions.games))
    device = adapter.device
    for start in progress(range(0, n_games, batch_size), desc="legal moves", unit="batch"):
        tokens = positions.tokens[start:start + batch_size].to(device)
        predicted = adapter.logits(tokens).argmax(-1).cpu()
        for row, game_index in enumerate(range(start, start + len(tokens))):
            index = positions.token_index[positions.game_index == game_index]
            for board, i in zip(boards_at_positions(positions.games[game_index], len(index)), index):
                token = vocab[int(predicted[row, i])]
                # <pad> and <bos> parse as no move: illegal.
                legal += token[0] != "<" and chess.Move.from_uci(token) in board.legal_moves
                total += 1
    return legal / total
