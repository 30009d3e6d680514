"""Legal-move rate, as Karvonen reports it: at each move dot, decode the model's greedy next move
(characters up to the next space) and check it is legal in the position there (White to move)."""

from __future__ import annotations

import torch

from tasks.chess.positions import Positions, boards_at_dots
from tasks.chess.tokenizer import CHAR_TO_ID, VOCAB, encode_batch

MAX_MOVE_CHARS = 8  # the longest SAN, like "exd8=Q+", is 7 characters, plus the closing space
SPACE = CHAR_TO_ID[" "]


@torch.no_grad()
def greedy_moves(model, prefixes: list[str]) -> list[str]:
    """The characters the model writes after each prefix, greedily, until a space."""
    width = max(len(p) for p in prefixes) + MAX_MOVE_CHARS
    tokens = encode_batch(prefixes, width).to(next(model.parameters()).device)
    lengths = torch.tensor([len(p) for p in prefixes], device=tokens.device)
    rows = torch.arange(len(prefixes), device=tokens.device)
    done = torch.zeros(len(prefixes), dtype=torch.bool, device=tokens.device)
    out = [[] for _ in prefixes]
    for step in range(MAX_MOVE_CHARS):
        logits = model(tokens[:, : int(lengths.max()) + step])
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


def legal_move_rate(model, positions: Positions, n_games: int, batch_size: int = 100) -> float:
    prefixes, boards = [], []
    for game_index in range(min(n_games, len(positions.games))):
        game = positions.games[game_index]
        dots = positions.char_index[positions.game_index == game_index]
        # Only dots whose decoded move still fits in the context window.
        dots = [d for d in dots if d + 1 + MAX_MOVE_CHARS <= model.cfg.n_ctx]
        prefixes += [game[: d + 1] for d in dots]
        boards += boards_at_dots(game, len(dots))
    legal = 0
    for start in range(0, len(prefixes), batch_size):
        moves = greedy_moves(model, prefixes[start:start + batch_size])
        for move, board in zip(moves, boards[start:start + batch_size]):
            try:
                board.parse_san(move)
                legal += 1
            except ValueError:
                pass
    return legal / len(prefixes)
