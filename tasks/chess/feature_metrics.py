"""Coverage and board reconstruction (docs/chess.md sections 6 to 8 and 13), as the reference code
computes them.

Counting (tasks/chess/threshold_counts.py) sums the label rows of each feature's active positions,
for every threshold in one pass over the active entries and over every BSP of every group at once.
Counts are summed in float32, exact up to 2^24, far above the 20,000 positions of the reference size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from tasks.chess.threshold_counts import threshold_counts

EPS = 1e-8
# float32 values of arange(0.0, 1.1, 0.1), as the reference builds them (0.3 -> 0.30000001).
THRESHOLDS = torch.arange(0.0, 1.1, 0.1, dtype=torch.float64).to(torch.float32)
RECONSTRUCTION_THRESHOLDS = THRESHOLDS[:10]  # t* is searched over 0.0..0.9 only
LABEL_PRECISION = 0.95
LABEL_MIN_TP = 10
PAIRS_PER_SLICE = 4096  # (feature, label) pairs OR-ed at a time: 4,096 x 313 words = 10 MB at 20,000 positions


@dataclass
class BSPGroup:
    """One BSP function's labels: (n, cells * classes) binary, cell-major."""
    train: torch.Tensor
    test: torch.Tensor
    classes_per_cell: int


def f1_score(tp, fp, fn):
    precision = tp / (tp + fp + EPS)
    recall = tp / (tp + fn + EPS)
    return 2 * precision * recall / (precision + recall + EPS)


def binarise(acts: torch.Tensor, max_acts: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Feature f is on at x when a_f(x) > float32(t) * |max_f| (strict). With |max_f|, as the reference:
    a feature whose maximum (over the statistics positions) is negative is on only where it exceeds
    that bound, which it never does on those positions."""
    return acts > (t * max_acts.abs())


def any_labelled(on: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """on (P, U) bool: feature u is on at position p; labels (U, J) bool: feature u carries label j.
    -> (P, J) bool: some feature on at p carries j, the same as (on.float() @ labels.float()) > 0.

    An OR needs no arithmetic: each feature's positions are packed into 64-bit words, and for each
    label the words of the features that carry it are OR-ed together, one `reduceat` over the
    (feature, label) pairs sorted by label. That is pairs x P / 64 word operations against the
    product's U x J x P multiply-adds: thousands of features carrying about 15 labels each make it
    tens of times less work."""
    n_pos, n_labels = on.shape[0], labels.shape[1]
    feature, label = labels.nonzero(as_tuple=True)
    if not n_pos or not len(feature):
        return torch.zeros(n_pos, n_labels, dtype=torch.bool)
    by_label = label.argsort(stable=True)
    feature, label = feature[by_label].numpy(), label[by_label].numpy()
    words = _position_words(on.numpy())
    hits = np.zeros((n_labels, words.shape[1]), dtype=np.uint64)
    # A slice of pairs at a time, so the gathered words stay PAIRS_PER_SLICE rows; a label cut
    # between two slices gets the OR of both parts.
    for start in range(0, len(feature), PAIRS_PER_SLICE):
        part = slice(start, start + PAIRS_PER_SLICE)
        present, first = np.unique(label[part], return_index=True)
        hits[present] |= np.bitwise_or.reduceat(words[feature[part]], first, axis=0)
    # Back to one row per position: bytes transposed (a small copy), then unpacked along positions.
    rows = np.unpackbits(np.ascontiguousarray(hits.view(np.uint8).T), axis=0)[:n_pos]
    return torch.from_numpy(rows.view(bool))


def _position_words(on: np.ndarray) -> np.ndarray:
    """(P, U) bool -> (U, ceil(P / 64)) uint64: row u holds feature u's positions as bits, position
    8k + b in bit 7 - b of byte k (numpy's packbits order), zero past P."""
    n_pos, n_features = on.shape
    if n_pos % 8:
        on = np.concatenate([on, np.zeros((8 - n_pos % 8, n_features), dtype=bool)])
    eights = on.view(np.uint8).reshape(-1, 8, n_features)
    packed = np.zeros((-(-n_pos // 64) * 8, n_features), dtype=np.uint8)
    for b in range(8):  # packed along positions while they are rows: no transpose of booleans
        packed[:len(eights)] |= eights[:, b] << (7 - b)
    return np.ascontiguousarray(packed.T).view(np.uint64)


def _group_slices(groups: dict[str, BSPGroup]) -> dict[str, slice]:
    out, start = {}, 0
    for name, g in groups.items():
        out[name] = slice(start, start + g.train.shape[1])
        start += g.train.shape[1]
    return out


def dense_threshold_counts(acts: torch.Tensor, max_acts: torch.Tensor, labels: torch.Tensor,
                           thresholds: torch.Tensor):
    """The straightforward version of `threshold_counts`: every feature binarised and multiplied
    against every label column at every threshold, as one block."""
    on_labelled, on_counts = [], []
    for t in thresholds:  # one dense (positions x features) matrix alive at a time
        on = binarise(acts, max_acts, t).float()
        on_labelled.append(on.T @ labels)
        on_counts.append(on.sum(0))
    yield torch.arange(acts.shape[1]), torch.stack(on_labelled, 1), torch.stack(on_counts, 1)


def evaluate_features(train_acts: torch.Tensor, test_acts: torch.Tensor, max_acts: torch.Tensor,
                      groups: dict[str, BSPGroup], sparse: bool = True) -> dict[str, dict]:
    """Per group: coverage (best t on train, all 11 thresholds) and reconstruction (labels from
    train, t* by per-square F1 on test over 0.0..0.9, per-class F1 reported at t*).
    `sparse=False` counts with dense products at every threshold: the straightforward version, kept
    for `make perf` and the test that both give identical results. (Reconstruction's OR over the
    labelled features is `any_labelled` either way; its own tests check it against the product.)"""
    slices = _group_slices(groups)
    y_train = torch.cat([g.train for g in groups.values()], dim=1).float()
    y_test = torch.cat([g.test for g in groups.values()], dim=1).bool()
    positives = y_train.sum(0)
    n_t, n_rec, n_bsp = len(THRESHOLDS), len(RECONSTRUCTION_THRESHOLDS), y_train.shape[1]
    best = torch.zeros(n_t, n_bsp)
    best_feature = torch.full((n_t, n_bsp), -1, dtype=torch.long)
    labelled = [[] for _ in range(n_rec)]  # per threshold: (features, their label rows), in feature order
    counts = threshold_counts if sparse else dense_threshold_counts
    for features, tp, on_count in counts(train_acts, max_acts, y_train, THRESHOLDS):
        f1 = f1_score(tp, on_count[..., None] - tp, positives - tp)          # (block, T, J)
        block_best, index = f1.max(0)                                         # first maximum on ties
        better = block_best > best  # strict: an earlier (lower-index) feature keeps a tie; 0 is no feature
        best = torch.where(better, block_best, best)
        best_feature = torch.where(better, features[index], best_feature)
        tp_rec, on_rec = tp[:, :n_rec], on_count[:, :n_rec, None]
        labels = (tp_rec / on_rec >= LABEL_PRECISION) & (tp_rec >= LABEL_MIN_TP)  # NaN (never on) -> False
        for i in range(n_rec):
            rows = labels[:, i].any(1).nonzero().squeeze(1)
            if len(rows):
                labelled[i].append((features[rows], labels[rows, i]))
    cov_by_t = {name: [best[i, sl].mean().item() for i in range(n_t)] for name, sl in slices.items()}
    rec_by_t = {name: [] for name in groups}
    for i, t in enumerate(RECONSTRUCTION_THRESHOLDS):
        pred = torch.zeros_like(y_test)
        if labelled[i]:
            used = torch.cat([f for f, _ in labelled[i]])
            on_test = binarise(test_acts[:, used], max_acts[used], t)
            # True OR of the labelled active features (the reference's int8 sum can wrap: not kept).
            pred = any_labelled(on_test, torch.cat([rows for _, rows in labelled[i]]))
        for name, sl in slices.items():
            rec_by_t[name].append(_reconstruction_counts(pred[:, sl], y_test[:, sl], groups[name].classes_per_cell))
    out = {}
    for name in groups:
        cov = torch.tensor(cov_by_t[name])
        t_cov = int(cov.argmax())
        per_square = torch.tensor([r["f1_per_square"] for r in rec_by_t[name]])
        t_star = int(per_square.argmax())  # first maximum: ties go to the lowest t
        out[name] = {
            "coverage": cov[t_cov].item(), "coverage_threshold": round(THRESHOLDS[t_cov].item(), 1),
            "coverage_by_threshold": [round(c, 6) for c in cov.tolist()],
            "reconstruction": rec_by_t[name][t_star]["f1_per_class"],
            "reconstruction_per_square": rec_by_t[name][t_star]["f1_per_square"],
            "reconstruction_threshold": round(THRESHOLDS[t_star].item(), 1),
            "reconstruction_by_threshold": [round(r["f1_per_class"], 6) for r in rec_by_t[name]],
            "best_f1_per_bsp": best[t_cov, slices[name]].tolist(),
            "best_feature_per_bsp": best_feature[t_cov, slices[name]].tolist(),
        }
    return out


def _reconstruction_counts(pred: torch.Tensor, truth: torch.Tensor, classes_per_cell: int) -> dict:
    pred, truth = pred.contiguous(), truth.contiguous()  # column slices of all BSPs: strided otherwise
    hit = pred & truth
    tp = int(torch.count_nonzero(hit))
    fp = int(torch.count_nonzero(pred)) - tp
    fn = int(torch.count_nonzero(truth)) - tp
    cells = (pred.shape[0], -1, classes_per_cell)
    correct = hit.view(cells).any(-1)
    wrong = pred.view(cells).sum(-1, dtype=torch.int16) - hit.view(cells).sum(-1, dtype=torch.int16)
    # Per square: a square predicted with exactly one right and exactly one wrong class is not a
    # hit (a square with one right and two or more wrong classes is not subtracted: reference).
    both = int(torch.count_nonzero(correct & (wrong == 1)))
    return {"f1_per_class": f1_score(tp, fp, fn), "f1_per_square": f1_score(tp - both, fp, fn)}
