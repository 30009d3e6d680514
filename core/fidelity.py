"""Fidelity of an adapter's features at their site (docs/language.md section 3), for every adapter.

The site's activation is replaced by the adapter's reconstruction of it: an SAE's decode(encode(x)),
or x itself for models whose features are their own computation (dense neurons, MoE-X's z), which
therefore recover all of the loss by construction; a transcoder's output replaces the MLP's output
(`FeatureAdapter.splice_hooks`), and explained variance is then of the MLP's output.

    loss_recovered = (CE_zero - CE_splice) / (CE_zero - CE_clean)

with CE the mean next-token cross-entropy over every predicted position (chess has no special
tokens; in text the document separator is predicted like any token, a deviation the language task
names), CE_zero with the site zeroed at every
position. Explained variance is SAELens's corrected formula, 1 - E|x - x_hat|^2 / (E|x|^2 - |E x|^2),
summed in float64. Checked against `sae_lens.evals.run_evals` in tests/test_sae.py.
"""

from __future__ import annotations

import math

import torch

MOSTLY_DEAD = 0.5  # more than half the features never firing on the text: flagged in the results


class _Variance:
    """Streaming sums for explained variance over (n, d) batches."""

    def __init__(self):
        self.sum_x, self.sum_sq, self.sum_resid, self.n = None, 0.0, 0.0, 0

    def add(self, x: torch.Tensor, x_hat: torch.Tensor) -> None:
        x, x_hat = x.reshape(-1, x.shape[-1]).double(), x_hat.reshape(-1, x.shape[-1]).double()
        self.sum_x = x.sum(0) if self.sum_x is None else self.sum_x + x.sum(0)
        self.sum_sq += x.pow(2).sum().item()
        self.sum_resid += (x - x_hat).pow(2).sum().item()
        self.n += len(x)

    def explained(self) -> float:
        total = self.sum_sq / self.n - (self.sum_x / self.n).pow(2).sum().item()
        mse = self.sum_resid / self.n
        if total < 1e-10:
            return 1.0 if mse < 1e-10 else 0.0
        return 1.0 - mse / total


def splice_details(adapter, layer: int, site: str) -> dict:
    """Which hooks the splice reads and replaces, for a result's details: the ablation behind
    loss_recovered zeroes the replaced one, so an SAE on the MLP's hidden units (hook_post) and a
    transcoder (hook_mlp_out) are measured against different ablations; this names each."""
    read, written = adapter.splice_hooks(layer, site)
    return {"reads": read, "replaces": written, "zero_ablation": written}


@torch.no_grad()
def fidelity(adapter, tokens: torch.Tensor, layer: int, site: str, batch_size: int = 32) -> dict:
    """Loss recovered, perplexity with and without the splice, explained variance, L0, dead
    fraction (and the mostly_dead flag, 1.0 or 0.0) of the adapter's features at (layer, site) over
    `tokens` (rows, pos).

    Where the features are the model's own activation at the replaced hook (`splice_is_identity`), the
    splice writes back what it read: its loss is the clean loss and its explained variance 1, so it is
    not run, and the features are read in the zero ablation's pass, before they are zeroed. Two forward
    passes per batch instead of three and a half; the features are the same numbers either way."""
    _, written = adapter.splice_hooks(layer, site)  # the ablation zeroes what the splice replaces
    identity = adapter.splice_is_identity(layer, site)
    ce = {"clean": [], "zero": [], "splice": []}
    variance = _Variance()
    active_total, positions, fired = 0.0, 0, None
    for start in range(0, len(tokens), batch_size):
        batch = tokens[start:start + batch_size]
        ce["clean"].append(adapter.loss_per_token(batch).flatten())
        if identity:
            (_, zero_loss), features = adapter.zero_ablated(batch, written)
            ce["zero"].append(zero_loss.flatten())
        else:
            ce["zero"].append(adapter.loss_per_token(batch, written, torch.zeros_like).flatten())
            ce["splice"].append(adapter.spliced_logits_and_loss(batch, layer, site, variance.add)[1].flatten())
            features = adapter.features(batch, layer, site)
        active = features > 0
        active_total += active.sum().item()
        positions += active.shape[0] * active.shape[1]
        batch_fired = active.flatten(0, 1).any(0)
        fired = batch_fired if fired is None else fired | batch_fired
    if identity:
        ce["splice"] = ce["clean"]
    mean = {k: torch.cat(v).double().mean().item() for k, v in ce.items()}
    denominator = mean["zero"] - mean["clean"]
    dead = 1.0 - fired.float().mean().item()
    return {
        "loss_recovered": (mean["zero"] - mean["splice"]) / denominator if denominator else float("nan"),
        "ce_clean": mean["clean"], "ce_zero_ablation": mean["zero"], "ce_splice": mean["splice"],
        "perplexity": math.exp(mean["clean"]), "perplexity_splice": math.exp(mean["splice"]),
        "explained_variance": 1.0 if identity else variance.explained(),
        "l0_fidelity": active_total / positions,
        "dead_fraction": dead,
        "mostly_dead": float(dead > MOSTLY_DEAD),
    }
