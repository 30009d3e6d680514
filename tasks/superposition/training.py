"""Training a batch of toy models at once: AdamW at a constant learning rate (the reference's
default schedule), fresh synthetic data every step, the importance-weighted squared error.

The default step is fused: the sampler, the decoder and the loss write into tensors reused from step
to step (tasks/superposition/toy_model.py says why), with the loss and its backward in one autograd
function. It trains the same weights, bit for bit, as the straightforward step (fused=False), which
is kept for the comparison (tests, perf/superposition.py)."""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from core.progress import progress

from tasks.superposition.toy_model import (FeatureSampler, Scratch, ToyModels, check_scratch, sample_features,
                                           scratch_step, work_tensor)


def reconstruction_loss(x: torch.Tensor, x_hat: torch.Tensor, importance: torch.Tensor) -> torch.Tensor:
    """Per model (N,): sum over features i of I_i * mean over the batch of (x_i - x_hat_i)^2."""
    return (importance * (x - x_hat) ** 2).mean(1).sum(-1)


class _WeightedSquaredError(torch.autograd.Function):
    """`reconstruction_loss` (same operations, so the same values) whose backward is one pass over
    (N, B, n) instead of autograd's chain of five or six, each into a fresh tensor. Autograd's
    gradient for x_hat is -(((g / B) * I) * (2 * diff)); scaling by 2 and negating are exact, so
    ((g / B) * I * -2) * diff is the same number."""

    @staticmethod
    def forward(ctx, x, x_hat, importance, scratch):
        diff = torch.sub(x, x_hat, out=work_tensor(scratch, "diff", x.shape, x))
        squared = torch.mul(diff, diff, out=work_tensor(scratch, "squared", x.shape, x)).mul_(importance)
        ctx.diff, ctx.importance, ctx.scratch, ctx.step = diff, importance, scratch, scratch_step(scratch)
        return squared.mean(1).sum(-1)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        check_scratch(ctx.scratch, ctx.step)
        diff, ctx.diff = ctx.diff, None                                    # its gradient is written into it
        if diff is None:
            raise RuntimeError("a second backward through the fused loss: its first used up the saved difference")
        coef = (grad[:, None, None] / diff.shape[1]) * ctx.importance * -2.0
        return None, diff.mul_(coef), None, None                           # diff is not needed again


def _update(opt: torch.optim.Optimizer, loss: torch.Tensor, aux: torch.Tensor) -> None:
    opt.zero_grad(set_to_none=True)
    # Summing over models keeps them independent: each parameter slice sees only its model's loss.
    (loss + aux).sum().backward()
    opt.step()


def training_step(model: ToyModels, density: torch.Tensor, importance: torch.Tensor, batch: int, lr: float,
                  generator: torch.Generator, fused: bool = True, one_draw: bool = False,
                  opt: torch.optim.Optimizer | None = None):
    """One training step as a function returning each model's loss (N,); the optimizer (AdamW at lr
    unless `opt` is given) and, fused, the reused tensors made once. one_draw: FeatureSampler's
    single-uniform sampling, opt-in and fused only, since it draws a different random stream."""
    if opt is None:
        opt = torch.optim.AdamW(model.parameters(), lr=lr)
    n_models, n_features = model.W.shape[0], model.spec.n_features
    if not fused:
        if one_draw:
            raise ValueError("one_draw sampling is an option of the fused step only")

        def straightforward() -> torch.Tensor:
            x = sample_features(n_models, batch, n_features, density, generator)
            x_hat, _, aux = model.forward_unfused(x)
            loss = reconstruction_loss(x, x_hat, importance)
            _update(opt, loss, aux)
            return loss.detach()
        return straightforward

    sample = FeatureSampler(n_models, batch, n_features, density, generator, one_draw)
    scratch = Scratch()

    def step() -> torch.Tensor:
        x = sample()
        x_hat, _, aux = model(x, scratch)
        loss = _WeightedSquaredError.apply(x, x_hat, importance, scratch)
        _update(opt, loss, aux)
        scratch.next_step()
        return loss.detach()
    return step


def train_models(model: ToyModels, density: torch.Tensor, importance: torch.Tensor, steps: int, batch: int,
                 lr: float, generator: torch.Generator, fused: bool = True, one_draw: bool = False,
                 checkpoint=None) -> torch.Tensor:
    """Trains every model in place; returns each one's reconstruction loss on the last 10% of steps.
    With a `checkpoint` (tasks/superposition/resume.py), starts from its saved state when there is one
    and saves weights, optimizer, generator, step and tail losses whenever it is due."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    step = training_step(model, density, importance, batch, lr, generator, fused, one_draw, opt)
    start, tail = 0, []
    state = checkpoint.load() if checkpoint is not None else None
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        start, tail = state["step"], list(state["tail"])
    for i in progress(range(start, steps), desc="superposition training", unit="step", initial=start, total=steps):
        loss = step()
        if i >= steps - max(1, steps // 10):
            tail.append(loss)
        if checkpoint is not None and checkpoint.due() and i + 1 < steps:
            checkpoint.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                             "generator": generator.get_state(), "step": i + 1, "tail": tail})
    return torch.stack(tail).mean(0)
