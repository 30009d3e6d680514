"""Feature activations over the auto-interp text, streamed to disk (memory bounded at any size).

Pass 1 runs the model over the text once and keeps, for each scored feature, only its maximum in
every 32-token window and how many tokens it fired on: a (windows x features) float32 array memory-
mapped on disk, written batch by batch. Sampling needs nothing more. Pass 2 recomputes the per-token
activations of just the windows a feature was sampled for (about 140 per feature), batch by batch.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from core.progress import progress

# (batch, ctx) token ids -> (batch, ctx, all features); the caller picks the model, site and layer
FeatureFn = Callable[[torch.Tensor], torch.Tensor]


def window_maxima(feature_fn: FeatureFn, sequences: np.ndarray, window: int, features: np.ndarray,
                  path: Path, batch_size: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """(maxima memmap of shape (n_windows, len(features)), tokens fired on per feature). Sequence s
    holds windows s * per_seq .. (s + 1) * per_seq - 1, each `window` tokens long."""
    n_seq, ctx = sequences.shape
    if ctx % window:
        raise ValueError(f"context {ctx} is not a multiple of the window {window}")
    per_seq = ctx // window
    path.parent.mkdir(parents=True, exist_ok=True)
    maxima = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n_seq * per_seq, len(features)))
    fired = np.zeros(len(features), dtype=np.int64)
    cols = torch.from_numpy(features)
    for start in progress(range(0, n_seq, batch_size), desc="auto-interp: window maxima", unit="batch"):
        acts = _features(feature_fn, sequences[start:start + batch_size], cols)  # (b, ctx, f)
        fired += (acts > 0).sum(dim=(0, 1)).numpy()
        b = acts.shape[0]
        per_window = acts.view(b, per_seq, window, -1).amax(dim=2).reshape(b * per_seq, -1)
        maxima[start * per_seq:(start + b) * per_seq] = per_window.numpy()
    maxima.flush()
    return maxima, fired


def window_activations(feature_fn: FeatureFn, sequences: np.ndarray, window: int, features: np.ndarray,
                       wanted: dict[int, list[int]], batch_size: int = 8) -> dict[tuple[int, int], np.ndarray]:
    """Per-token activations for (window, column) pairs: `wanted` maps a column of `features` to the
    windows it needs. Only sequences that hold a wanted window are run."""
    per_seq = sequences.shape[1] // window
    by_window: dict[int, list[int]] = defaultdict(list)
    for col, windows in wanted.items():
        for w in windows:
            by_window[int(w)].append(col)
    seqs = sorted({w // per_seq for w in by_window})
    cols = torch.from_numpy(features)
    out: dict[tuple[int, int], np.ndarray] = {}
    for start in progress(range(0, len(seqs), batch_size), desc="auto-interp: example windows", unit="batch"):
        chunk = seqs[start:start + batch_size]
        acts = _features(feature_fn, sequences[chunk], cols)
        for row, s in enumerate(chunk):
            for w in range(s * per_seq, (s + 1) * per_seq):
                offset = (w - s * per_seq) * window
                for col in by_window.get(w, ()):
                    out[(w, col)] = acts[row, offset:offset + window, col].numpy().copy()
    return out


@torch.no_grad()
def _features(feature_fn: FeatureFn, tokens: np.ndarray, cols: torch.Tensor) -> torch.Tensor:
    return feature_fn(torch.from_numpy(np.ascontiguousarray(tokens)).long()).float().cpu()[..., cols]
