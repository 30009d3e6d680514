"""The linear-probe ceiling: multinomial logistic regression per square (13 classes) on the
residual stream at the dots, as Karvonen's probes; scored as micro F1 over the 768 masked
board-state BSPs of the test positions, the same labels the feature metrics use.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from core.allocator import reuse_freed_memory
from tasks.chess.board_state import N_CLASSES, one_hot_to_masked_bsps
from tasks.chess.feature_metrics import f1_score


def fit_probe(x: torch.Tensor, classes: torch.Tensor, max_iter: int = 100, l2: float = 1e-4,
              seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """x (n, d) activations, classes (n, 64) in 0..12 -> (mean, std, W (d, 64*13), b).
    L-BFGS (sklearn's default solver for multinomial logistic regression) on standardised inputs,
    full batch, so the fit is deterministic. It runs on x's device (fitted on the CPU, it was most of a
    GPU training run's time); the initial weights are drawn on the CPU, so a seed starts the same probe
    on every device."""
    mean, std = x.mean(0), x.std(0) + 1e-6
    z = (x - mean) / std
    gen = torch.Generator().manual_seed(seed)
    weight = (torch.randn(x.shape[1], 64 * N_CLASSES, generator=gen) * 0.01).to(x.device).requires_grad_()
    bias = torch.zeros(64 * N_CLASSES, device=x.device, requires_grad=True)
    target = classes.to(x.device).long()  # (n, 64)
    opt = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=max_iter, history_size=20,
                            line_search_fn="strong_wolfe", tolerance_grad=1e-6, tolerance_change=1e-9)

    def closure():
        opt.zero_grad()
        # Mean over squares of the per-square cross-entropy: 64 independent 13-way classifiers. The
        # columns are taken class-major, so the logits come out as (n, classes, squares) and the
        # softmax runs along contiguous squares: the same fit as (n * 64, classes) rows, bit for bit on
        # some CPUs and within float rounding on others (tests/test_probe.py), in about 40% less time.
        class_major = weight.view(-1, 64, N_CLASSES).transpose(1, 2).reshape(-1, 64 * N_CLASSES)
        logits = (z @ class_major + bias.view(64, N_CLASSES).T.reshape(-1)).view(len(z), N_CLASSES, 64)
        loss = F.cross_entropy(logits, target) * 64 + l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    with reuse_freed_memory():  # each step allocates the same ~66 MB logits and gradients again
        opt.step(closure)
    return mean, std, weight.detach(), bias.detach()


def predict_classes(probe, x: torch.Tensor) -> torch.Tensor:
    mean, std, weight, bias = probe
    return (((x - mean) / std) @ weight + bias).view(len(x), 64, N_CLASSES).argmax(-1)


def masked_board_f1(pred_classes: torch.Tensor, true_classes: torch.Tensor) -> float:
    pred = torch.from_numpy(one_hot_to_masked_bsps(pred_classes.cpu().numpy())).bool()
    truth = torch.from_numpy(one_hot_to_masked_bsps(true_classes.cpu().numpy())).bool()
    return f1_score((pred & truth).sum().item(), (pred & ~truth).sum().item(), (~pred & truth).sum().item())


def probe_f1(x_train, classes_train, x_test, classes_test, seed: int = 0) -> float:
    probe = fit_probe(x_train.float(), classes_train, seed=seed)
    return masked_board_f1(predict_classes(probe, x_test.float()), classes_test)
