"""The 32-symbol character vocabulary of docs/chess.md section 2.2 (Karvonen's chess models use it)."""

from __future__ import annotations

import torch

from core.errors import BenchError

VOCAB = " #+-.0123456789;=BKNOQRabcdefghx"
assert len(VOCAB) == 32
CHAR_TO_ID = {c: i for i, c in enumerate(VOCAB)}
DOT_ID = CHAR_TO_ID["."]
START_ID = CHAR_TO_ID[";"]
PAD_ID = CHAR_TO_ID[" "]


def encode(text: str) -> list[int]:
    try:
        return [CHAR_TO_ID[c] for c in text]
    except KeyError as e:
        raise BenchError(f"character {e.args[0]!r} is not in the chess vocabulary {VOCAB!r}") from None


def decode(ids) -> str:
    return "".join(VOCAB[int(i)] for i in ids)


def encode_batch(texts: list[str], length: int) -> torch.Tensor:
    """Each text cut or right-padded with spaces to `length` ids. The model is causal, so padding
    after a position never changes that position's activations."""
    out = torch.full((len(texts), length), PAD_ID, dtype=torch.long)
    for row, text in enumerate(texts):
        ids = encode(text[:length])
        out[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return out
