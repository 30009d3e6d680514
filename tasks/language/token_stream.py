"""Token ids of the corpus splits, and the batches training draws from them.

A split is its documents joined with the tokenizer's document separator, encoded once and cached
under .cache/language/ (keyed by the tokenizer and a hash of the text, so a changed corpus is
re-encoded). Training batches are windows at random offsets, seeded by (seed, step): a resumed run
sees exactly the batches it would have seen. Held-out text is cut into consecutive, non-overlapping
windows: the first ones for validation loss and perplexity, the next ones for auto-interp.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np
import torch

from core.errors import BenchError
from core.paths import CACHE as CACHE_ROOT

CACHE = CACHE_ROOT / "language"


def split_ids(documents: list[str], tokenizer, chunk: int = 512) -> np.ndarray:
    """All documents as one int32 id array, each followed by the separator; cached on disk under a
    key of the tokenizer's content and the text (hashed document by document, never joined)."""
    digest = hashlib.sha256(tokenizer.digest.encode())
    for doc in documents:
        digest.update(hashlib.sha256(doc.encode("utf-8")).digest())
    path = CACHE / f"{tokenizer.name}-{digest.hexdigest()[:16]}.npy"
    if path.exists():
        return np.load(path)
    parts = []
    for start in range(0, len(documents), chunk):  # a chunk of documents at a time as Python ints
        ids = []
        for doc in documents[start:start + chunk]:
            ids.extend(tokenizer.encode(doc))
            ids.append(tokenizer.eos_id)
        parts.append(np.asarray(ids, dtype=np.int32))
    array = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp.npy")
    np.save(tmp, array)
    os.replace(tmp, path)
    return array


class TextStream:
    def __init__(self, ids: np.ndarray, n_ctx: int, seed: int):
        if len(ids) <= n_ctx:
            raise BenchError(f"the training text has {len(ids)} tokens, fewer than one context of {n_ctx}")
        self.ids, self.n_ctx, self.seed = torch.from_numpy(ids.astype(np.int64)), n_ctx, seed

    def batch(self, step: int, batch_size: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        starts = torch.randint(len(self.ids) - self.n_ctx, (batch_size,), generator=gen)
        return self.ids[starts[:, None] + torch.arange(self.n_ctx)]


def heldout_windows(ids: np.ndarray, n_ctx: int, n_first: int, n_second: int) -> tuple[np.ndarray, np.ndarray]:
    """(n_first, n_ctx) and (n_second, n_ctx) consecutive windows of the held-out ids."""
    need = (n_first + n_second) * n_ctx
    if len(ids) < need:
        raise BenchError(f"the held-out text has {len(ids)} tokens; this preset reads {need} "
                         f"({n_first} + {n_second} windows of {n_ctx}); use a larger held-out split or a smaller preset")
    rows = ids[:need].astype(np.int64).reshape(n_first + n_second, n_ctx)
    return rows[:n_first], rows[n_first:]
