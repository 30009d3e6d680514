"""Training a batch of toy models at once: AdamW at a constant learning rate (the reference's
default schedule), fresh synthetic data every step, the importance-weighted squared error."""

from __future__ import annotations

import torch

from tasks.superposition.toy_model import ToyModels, sample_features


def reconstruction_loss(x: torch.Tensor, x_hat: torch.Tensor, importance: torch.Tensor) -> torch.Tensor:
    """Per model (N,): sum over features i of I_i * mean over the batch of (x_i - x_hat_i)^2."""
    return (importance * (x - x_hat) ** 2).mean(1).sum(-1)


def train_models(model: ToyModels, density: torch.Tensor, importance: torch.Tensor, steps: int, batch: int,
                 lr: float, generator: torch.Generator) -> torch.Tensor:
    """Trains every model in place; returns each one's reconstruction loss on the last 10% of steps."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    n_models, n_features = model.W.shape[0], model.spec.n_features
    tail = []
    for step in range(steps):
        x = sample_features(n_models, batch, n_features, density, generator)
        x_hat, _, aux = model(x)
        loss = reconstruction_loss(x, x_hat, importance)
        opt.zero_grad(set_to_none=True)
        # Summing over models keeps them independent: each parameter slice sees only its model's loss.
        (loss + aux).sum().backward()
        opt.step()
        if step >= steps - max(1, steps // 10):
            tail.append(loss.detach())
    return torch.stack(tail).mean(0)
