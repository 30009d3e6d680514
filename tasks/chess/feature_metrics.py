"""Coverage and board reconstruction (spec/chess.md sections 4, 5 and 7), as the reference code
computes them.

All counting is matrix products of binarised activations against binary BSP labels, one threshold
at a time, over every BSP of every group at once. Counts are summed in float32, exact up to 2^24,
far above the 20,000 positions of the reference size.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

EPS = 1e-8
# float32 values of arange(0.0, 1.1, 0.1), as the reference builds them (0.3 -> 0.30000001).
THRESHOLDS = torch.arange(0.0, 1.1, 0.1, dtype=torch.float64).to(torch.float32)
RECONSTRUCTION_THRESHOLDS = THRESHOLDS[:10]  # t* is searched over 0.0..0.9 only
LABEL_PRECISION = 0.95
LABEL_MIN_TP = 10


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
    """Feature f is on at x when a_f(x) > float32(t) * |max_f| (strict); max < 0 is never on."""
    return acts > (t * max_acts.abs())


def _group_slices(groups: dict[str, BSPGroup]) -> dict[str, slice]:
    out, start = {}, 0
    for name, g in groups.items():
        out[name] = slice(start, start + g.train.shape[1])
        start += g.train.shape[1]
    return out


def evaluate_features(train_acts: torch.Tensor, test_acts: torch.Tensor, max_acts: torch.Tensor,
                      groups: dict[str, BSPGroup], only_firing: bool = True) -> dict[str, dict]:
    """Per group: coverage (best t on train, all 11 thresholds) and reconstruction (labels from
    train, t* by per-square F1 on test over 0.0..0.9, per-class F1 reported at t*).
    `only_firing=False` counts every feature at every threshold: the straightforward dense version,
    kept for `make perf` and the test that both give identical results."""
    slices = _group_slices(groups)
    y_train = torch.cat([g.train for g in groups.values()], dim=1).float()
    y_test = torch.cat([g.test for g in groups.values()], dim=1).bool()
    positives = y_train.sum(0)
    cov_by_t = {name: [] for name in groups}
    best_f1_by_t, best_feature_by_t = [], []
    rec_by_t = {name: [] for name in groups}
    for t_index, t in enumerate(THRESHOLDS):
        on_train = binarise(train_acts, max_acts, t)
        # Only features that fire at this threshold can score or earn a label: the others have
        # TP = 0, F1 = 0 and no label, so leaving them out changes no count. At high thresholds
        # few features fire, which is where the sparsity of activations pays.
        firing = on_train.any(0).nonzero().squeeze(1) if only_firing else torch.arange(on_train.shape[1])
        on_train = on_train[:, firing].float()
        tp = on_train.T @ y_train                      # (firing, J)
        on_count = on_train.sum(0, keepdim=True).T     # (firing, 1)
        f1 = f1_score(tp, on_count - tp, positives - tp)
        best = torch.zeros(y_train.shape[1])
        best_feature = torch.full((y_train.shape[1],), -1, dtype=torch.long)
        if len(firing):
            best, index = f1.max(0)
            best_feature = torch.where(best > 0, firing[index], -1)
        best_f1_by_t.append(best)
        best_feature_by_t.append(best_feature)
        for name, sl in slices.items():
            cov_by_t[name].append(best[sl].mean().item())
        if t_index < len(RECONSTRUCTION_THRESHOLDS):
            labels = (tp / on_count >= LABEL_PRECISION) & (tp >= LABEL_MIN_TP)   # NaN (never on) -> False
            labelled = labels.any(1).nonzero().squeeze(1)
            used = firing[labelled]
            on_test = binarise(test_acts[:, used], max_acts[used], t).float()
            # True OR of the labelled active features (the reference's int8 sum can wrap: not kept).
            pred = (on_test @ labels[labelled].float()) > 0
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
            "best_f1_per_bsp": best_f1_by_t[t_cov][slices[name]].tolist(),
            "best_feature_per_bsp": best_feature_by_t[t_cov][slices[name]].tolist(),
        }
    return out


def _reconstruction_counts(pred: torch.Tensor, truth: torch.Tensor, classes_per_cell: int) -> dict:
    tp = (pred & truth).sum().item()
    fp = (pred & ~truth).sum().item()
    fn = (~pred & truth).sum().item()
    n = pred.shape[0]
    correct = (pred & truth).view(n, -1, classes_per_cell).any(-1)
    wrong = (pred & ~truth).view(n, -1, classes_per_cell).sum(-1)
    # Per square: a square predicted with exactly one right and exactly one wrong class is not a
    # hit (a square with one right and two or more wrong classes is not subtracted: reference).
    both = (correct & (wrong == 1)).sum().item()
    return {"f1_per_class": f1_score(tp, fp, fn), "f1_per_square": f1_score(tp - both, fp, fn)}
