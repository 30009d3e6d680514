"""Training batches: rows of n_ctx characters that each start at the `;` of a random game and run
on into the following games (packing), drawn by a generator seeded with (seed, step)."""

from __future__ import annotations

import numpy as np
import torch

from tasks.chess.tokenizer import CHAR_TO_ID

_LOOKUP = np.zeros(256, dtype=np.uint8)
for _char, _id in CHAR_TO_ID.items():
    _LOOKUP[ord(_char)] = _id


class GameStream:
    def __init__(self, games: list[str], n_ctx: int, seed: int):
        text = " ".join(games) + " "
        self.tokens = torch.from_numpy(_LOOKUP[np.frombuffer(text.encode("ascii"), dtype=np.uint8)].astype(np.int64))
        lengths = np.array([len(g) + 1 for g in games])
        self.starts = torch.from_numpy(np.concatenate([[0], np.cumsum(lengths)[:-1]]))
        self.n_ctx, self.seed = n_ctx, seed
        # Wrap around at the end so every start gives a full row.
        self.tokens = torch.cat([self.tokens, self.tokens[:n_ctx]])

    def batch(self, step: int, batch_size: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        starts = self.starts[torch.randint(len(self.starts), (batch_size,), generator=gen)]
        return self.tokens[starts[:, None] + torch.arange(self.n_ctx)]
