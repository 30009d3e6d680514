"""Every threshold's counts from one pass over the active entries (coverage and reconstruction
count, for each feature f, threshold t and BSP j, the positions where f is on and j holds).

f is on at position p and threshold t when a_f(p) > t * |max_f|. The thresholds are nested: an
entry on at t_i is on at every lower one. So each active (position, feature) entry is given its
bin, the number of thresholds it exceeds, and the label rows of the positions are summed once per
(feature, bin) with `embedding_bag`; a reverse cumulative sum over the bins then gives the counts at
every threshold. The work is (active entries) x (BSPs), once, where the straightforward version does
a dense (features x positions x BSPs) product at each of the 11 thresholds: for sparse codes (SAE
latents, MoE-X units) most of that product multiplies zeros.

Counts are integers summed in float32, exact up to 2^24 positions, so the result equals the
straightforward version bit for bit.
"""

from __future__ import annotations

from typing import Iterator

import torch
import torch.nn.functional as F

# Bounds on one block of features: the positions x features entries it scans (its index tensors
# take up to about 64 bytes per active entry), and its (features, thresholds + 1, BSPs) float sums,
# which matter when positions are few and features many.
ENTRIES_PER_BLOCK = 2 ** 24
SUMS_PER_BLOCK = 2 ** 24


def threshold_counts(acts: torch.Tensor, max_acts: torch.Tensor, labels: torch.Tensor, thresholds: torch.Tensor
                     ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """acts (P, n_features), max_acts (n_features,), labels (P, J) float 0/1, thresholds ascending
    from 0. Yields, per block of features: their indices (B,), on-and-labelled counts (B, T, J) and
    on counts (B, T), in feature order."""
    n_pos, n_features = acts.shape
    n_t = len(thresholds)
    n_labels = labels.shape[1]
    block = max(1, min(n_features, ENTRIES_PER_BLOCK // max(1, n_pos), SUMS_PER_BLOCK // ((n_t + 1) * max(1, n_labels))))
    for start in range(0, n_features, block):
        a = acts[:, start:start + block]
        n = a.shape[1]
        scale = max_acts[start:start + block].abs()
        pos, feat = (a > thresholds[0] * scale).nonzero(as_tuple=True)
        values, entry_scale = a[pos, feat], scale[feat]
        bins = torch.ones_like(feat)  # every entry here exceeds thresholds[0]
        for t in thresholds[1:]:
            bins += values > t * entry_scale  # the same float32 product and strict comparison as binarise
        key = feat * (n_t + 1) + bins
        order = key.argsort(stable=True)
        per_bag = torch.bincount(key, minlength=n * (n_t + 1))
        offsets = per_bag.cumsum(0) - per_bag
        sums = F.embedding_bag(pos[order], labels, offsets, mode="sum").view(n, n_t + 1, n_labels)
        # on at threshold i <=> bin >= i + 1: sum the bins from the top down
        on_labelled = sums.flip(1).cumsum(1).flip(1)[:, 1:]
        on = per_bag.view(n, n_t + 1).flip(1).cumsum(1).flip(1)[:, 1:].float()
        yield torch.arange(start, start + n), on_labelled, on
