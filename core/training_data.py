"""What a task hands the trainer: a batch for every step, the validation tokens, and what the
checkpoint records of the data (a resumed run whose data differ is refused)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch


@dataclass
class TrainingData:
    batch_fn: Callable[[int], torch.Tensor]
    val_tokens: torch.Tensor
    fingerprint: dict
