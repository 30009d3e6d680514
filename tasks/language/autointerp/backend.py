"""What an auto-interp backend is given and returns (docs/language.md section 4, delphi's protocol).

A backend explains a feature from its explanation examples, then scores that explanation on test
examples it has not seen: detection (plain text: does the feature fire here?) and fuzzing (tokens
highlighted with << >>: do the highlights fit the explanation?). The scorer sees only the
explanation's text, never the examples it came from. Two backends: `lexical` (deterministic, offline)
and `llm` (any OpenAI-compatible chat endpoint); their scores are never mixed.

An answer of None is a parse failure: counted apart, never scored as right or wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Example:
    """A window of text (32 tokens in the protocol) and one feature's activation on each token."""
    tokens: tuple[str, ...]          # each token's text as the tokenizer decodes it, spaces kept
    activations: np.ndarray = field(compare=False)  # float32, one per token; zeros for verified negatives
    decile: int | None = None        # 0 (weakest) .. 9 (strongest) for activating examples, None otherwise
    highlighted: tuple[int, ...] = ()  # token positions shown as <<token>> when fuzzing

    @property
    def max_activation(self) -> float:
        return float(self.activations.max()) if len(self.activations) else 0.0


class Backend(Protocol):
    #: "lexical" or "llm:<model>", written into every result that used it
    name: str

    def explain(self, examples: list[Example]) -> str | None:
        """An explanation of the feature from its activating examples; None if none could be parsed."""

    def detect(self, explanation: str, batch: list[Example]) -> list[bool | None]:
        """Per example (shown as plain text): does the feature fire in it?"""

    def fuzz(self, explanation: str, batch: list[Example]) -> list[bool | None]:
        """Per example (its `highlighted` tokens marked): are the marked tokens what the explanation
        describes?"""
