"""The `lexical` backend: a deterministic, offline explainer and scorer (docs/language.md section 5.1).

Explanation: the tokens that carry most of the activation mass in the explanation examples, in the
spirit of OpenAI's token-lookup explanations. Tokens are compared by their text with surrounding
whitespace removed and case folded (" The" and "the" are one token here). The smallest set of tokens,
heaviest first, whose summed activation reaches `mass` of the total, at most `max_tokens` of them.

Detection predicts "fires" when an example contains one of the explanation's tokens. Fuzzing predicts
"the highlights fit" when every highlighted token is one of them. The explanation is written out as
text and the scorer reads only that text back, as an LLM scorer would: the lexical scorer has no
side channel to the examples the explanation came from.

A lower bound on what an explanation can do: single tokens only, no context. Its scores are labelled
`lexical` and never mixed with an LLM's.
"""

from __future__ import annotations

import json
from collections import defaultdict

from tasks.language.autointerp.backend import Example

PREFIX = "fires on the tokens: "


def normalise(token: str) -> str:
    stripped = token.strip().casefold()
    return stripped if stripped else token  # a whitespace-only token stays itself


class LexicalBackend:
    name = "lexical"

    def __init__(self, mass: float = 0.5, max_tokens: int = 10):
        if not 0 < mass <= 1:
            raise ValueError(f"mass must be in (0, 1], got {mass}")
        self.mass, self.max_tokens = mass, max_tokens

    def explain(self, examples: list[Example]) -> str | None:
        weight: dict[str, float] = defaultdict(float)
        for ex in examples:
            for token, act in zip(ex.tokens, ex.activations.tolist()):
                if act > 0:
                    weight[normalise(token)] += act
        total = sum(weight.values())
        if total <= 0:
            return None
        chosen, covered = [], 0.0
        for token, w in sorted(weight.items(), key=lambda kv: (-kv[1], kv[0])):
            if covered >= self.mass * total or len(chosen) == self.max_tokens:
                break
            chosen.append(token)
            covered += w
        return PREFIX + json.dumps(chosen, ensure_ascii=False)

    @staticmethod
    def _tokens(explanation: str) -> set[str] | None:
        if not explanation.startswith(PREFIX):
            return None
        try:
            tokens = json.loads(explanation[len(PREFIX):])
        except json.JSONDecodeError:
            return None
        return set(tokens) if isinstance(tokens, list) and all(isinstance(t, str) for t in tokens) else None

    def detect(self, explanation: str, batch: list[Example]) -> list[bool | None]:
        tokens = self._tokens(explanation)
        if tokens is None:
            return [None] * len(batch)
        return [any(normalise(t) in tokens for t in ex.tokens) for ex in batch]

    def fuzz(self, explanation: str, batch: list[Example]) -> list[bool | None]:
        tokens = self._tokens(explanation)
        if tokens is None:
            return [None] * len(batch)
        return [bool(ex.highlighted) and all(normalise(ex.tokens[i]) in tokens for i in ex.highlighted)
                for ex in batch]
