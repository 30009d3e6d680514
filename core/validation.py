"""The validation loss of any model that speaks TransformerLens's `model(tokens, return_type="loss")`:
the training loop's number and the one every result reports, so it has one definition."""

from __future__ import annotations

import torch


@torch.no_grad()
def validation_loss(model, val_tokens: torch.Tensor, batch_size: int, bf16: bool) -> float:
    """Mean next-token cross-entropy: each batch's mean, weighted by its rows. The model's train/eval
    mode is left as it was."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(val_tokens), batch_size):
        batch = val_tokens[start:start + batch_size]
        with torch.autocast(batch.device.type, dtype=torch.bfloat16, enabled=bf16):
            total += model(batch, return_type="loss").item() * len(batch)
        count += len(batch)
    model.train(was_training)
    return total / count
