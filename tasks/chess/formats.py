"""How a chess game becomes tokens: SAN characters or one token per move. A preset picks one.

Both formats read the same games and are evaluated at the same positions: the first 20 positions
with White to move (the start, then after each Black move). Everything downstream (board-state
properties, coverage, reconstruction, the probe, the random-init floor) sees only features at those
positions, so it runs unchanged on either. What differs, and lives here:

    chars  Karvonen's 32 characters; positions are the move-number dots of the first 256
           characters.
    moves  `<bos>` then one UCI move per ply (move_vocab.py); position n is token 2n.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.errors import BenchError
from core.paths import CACHE
from tasks.chess.corpus import (EVAL_MIN_DOTS, EVAL_WINDOW, OWN_GAMES_FIX, movetext_problem, read_games_file,
                                san_moves)
from tasks.chess.move_vocab import BOS_ID, PAD_ID, token_ids, vocabulary
from tasks.chess.tokenizer import CHAR_TO_ID, VOCAB, encode_batch

N_POSITIONS = EVAL_MIN_DOTS  # evaluation positions per game


class PackedStream:
    """Training rows of n_ctx tokens, each starting at a random game's first token and running on
    into the following games (packing); a pure function of (seed, step)."""

    def __init__(self, tokens: torch.Tensor, starts: torch.Tensor, n_ctx: int, seed: int):
        # Wrap around at the end so every start gives a full row.
        self.tokens, self.starts = torch.cat([tokens, tokens[:n_ctx]]), starts
        self.n_ctx, self.seed = n_ctx, seed

    def batch(self, step: int, batch_size: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        starts = self.starts[torch.randint(len(self.starts), (batch_size,), generator=gen)]
        return self.tokens[starts[:, None] + torch.arange(self.n_ctx)]


@dataclass(frozen=True)
class CharFormat:
    name: str = "chars"
    window: int = EVAL_WINDOW  # tokens of each game the evaluation reads

    @property
    def vocab_size(self) -> int:
        return len(VOCAB)

    def encode(self, games: list[str], length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(tokens (n, length) padded with spaces, real lengths (n,))."""
        return encode_batch(games, length), torch.tensor([min(len(g), length) for g in games])

    def position_index(self, game: str) -> list[int]:
        return [i for i, c in enumerate(game[:self.window]) if c == "."][:N_POSITIONS]

    def flat_games(self, games: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """The games as one token array, each followed by a space, and each game's first index.
        GameError names the first game with a character outside the vocabulary or an illegal move."""
        lookup = np.full(256, 255, dtype=np.uint8)
        for char, i in CHAR_TO_ID.items():
            lookup[ord(char)] = i
        ids = lookup[np.frombuffer((" ".join(games) + " ").encode("ascii", errors="replace"), dtype=np.uint8)]
        if (ids == 255).any():
            for g, game in enumerate(games):
                bad = next((c for c in game if c not in CHAR_TO_ID), None)
                if bad is not None:
                    raise GameError(g, f"character {bad!r} is not in the chess vocabulary")
        for g, game in enumerate(games):  # characters of the vocabulary can still spell an illegal move
            try:
                game_move_ids(game)
            except ValueError as e:
                raise GameError(g, str(e)) from None
        lengths = np.array([len(g) + 1 for g in games])
        return ids.astype(np.int16), np.concatenate([[0], np.cumsum(lengths)[:-1]])


@dataclass(frozen=True)
class MoveFormat:
    name: str = "moves"
    # <bos> and 63 plies: every game of the corpus whole (the generator stops at 60 plies), and
    # position 19 (token 38) with its next move well inside.
    window: int = 64

    @property
    def vocab_size(self) -> int:
        return len(vocabulary())

    def encode(self, games: list[str], length: int) -> tuple[torch.Tensor, torch.Tensor]:
        out = torch.full((len(games), length), PAD_ID, dtype=torch.long)
        lengths = []
        for row, game in enumerate(games):
            ids = [BOS_ID] + game_move_ids(game, limit=length - 1)
            out[row, :len(ids)] = torch.tensor(ids)
            lengths.append(len(ids))
        return out, torch.tensor(lengths)

    def position_index(self, game: str) -> list[int]:
        plies = len(san_moves(game))
        return [2 * n for n in range(N_POSITIONS) if 2 * n <= plies][:N_POSITIONS]

    def flat_games(self, games: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """`<bos>` + the moves of each game, back to back, and each game's first index. GameError
        names the first game with an illegal move."""
        parts, starts, at = [], [], 0
        for g, game in enumerate(games):
            try:
                ids = [BOS_ID] + game_move_ids(game)
            except ValueError as e:
                raise GameError(g, str(e)) from None
            starts.append(at)
            parts.append(np.array(ids, dtype=np.int16))
            at += len(ids)
        return np.concatenate(parts), np.array(starts)


class GameError(ValueError):
    def __init__(self, game_index: int, reason: str):
        super().__init__(reason)
        self.game_index, self.reason = game_index, reason


def flat_corpus(fmt, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """fmt.flat_games of a corpus file; a bad game is refused naming file, line and what is wrong.
    Replaying SAN for the move format takes about 12 us a move, so the result is cached under a key
    of the format and the file's bytes."""
    # The vocabulary is in the key: token ids from another vocabulary are never reused.
    vocab = "\n".join(vocabulary()) if fmt.name == "moves" else VOCAB
    key = hashlib.sha256(fmt.name.encode() + vocab.encode() + path.read_bytes()).hexdigest()[:20]
    cache = CACHE / "chess" / f"flat-{fmt.name}-{key}.npz"
    if cache.exists():
        with np.load(cache) as data:
            return data["tokens"], data["starts"]
    try:
        tokens, starts = fmt.flat_games(read_games_file(path))
    except GameError as e:
        raise BenchError(f"{path}:{e.game_index + 1}: {e.reason}; not a chess game in the `;1.e4 e5 ...` "
                         f"format ({OWN_GAMES_FIX})") from None
    cache.parent.mkdir(parents=True, exist_ok=True)
    # A name of its own: two jobs building the same cache must not write into one temp file.
    fd, tmp = tempfile.mkstemp(dir=cache.parent, prefix=cache.stem, suffix=".tmp.npz")
    with os.fdopen(fd, "wb") as f:
        np.savez(f, tokens=tokens, starts=starts)
    os.replace(tmp, cache)
    return tokens, starts


def packed_stream(fmt, games: list[str], n_ctx: int, seed: int) -> PackedStream:
    tokens, starts = fmt.flat_games(games)
    return PackedStream(torch.from_numpy(tokens.astype(np.int64)), torch.from_numpy(starts), n_ctx, seed)


def game_move_ids(game: str, limit: int | None = None) -> list[int]:
    """The token id of each ply (at most `limit`); ValueError naming the first illegal move."""
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be at least 0, got {limit}")
    ids, illegal = _replayed(game)
    if illegal is not None and (limit is None or illegal[0] < limit):
        raise ValueError(f"ply {illegal[0] + 1}: {illegal[1]!r} is not a legal move here")
    problem = _layout_problem(game)  # checked after the replay: an illegal move is the likelier news
    if problem is not None:
        raise ValueError(problem)
    return list(ids[:limit])


_layout_problem = functools.lru_cache(maxsize=8192)(movetext_problem)


@functools.lru_cache(maxsize=8192)
def _replayed(game: str) -> tuple[tuple[int, ...], tuple[int, str] | None]:
    """The token ids of a game's plies up to its first illegal one, and that ply's (index, SAN) or
    None. Replaying SAN costs about 12 us a move and an evaluation game is replayed several times
    (checked, encoded for each model and its floor), so the last few thousand games are remembered."""
    import chess

    ids, board, lookup = [], chess.Board(), token_ids()
    for ply, san in enumerate(san_moves(game)):
        try:
            move = board.push_san(san)
        except ValueError:
            return tuple(ids), (ply, san)
        ids.append(lookup[move.uci()])
    return tuple(ids), None


FORMATS = {"chars": CharFormat(), "moves": MoveFormat()}


def game_format(name: str):
    if name not in FORMATS:
        raise BenchError(f"format {name!r} unknown; choose one of {', '.join(FORMATS)}")
    return FORMATS[name]
