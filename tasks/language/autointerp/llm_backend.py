"""The `llm` auto-interp backend: explanations and scores from an OpenAI-compatible chat endpoint.

It implements backend.Backend. An answer it cannot parse is None and counted in `parse_failures`
(per operation); an endpoint it cannot reach stops the run with a BenchError (llm_client.py).
"""

from __future__ import annotations

import threading

from tasks.language.autointerp import prompts
from tasks.language.autointerp.backend import Example
from tasks.language.autointerp.llm_client import ChatClient, LLMConfig


class LLMBackend:
    def __init__(self, config: LLMConfig, client: ChatClient | None = None):
        self.config = config
        self.client = client or ChatClient(config)
        self.name = f"llm:{config.model}"
        # explain: explanations that could not be read; detect/fuzz: examples answered None.
        self.parse_failures = {"explain": 0, "detect": 0, "fuzz": 0}
        self._lock = threading.Lock()

    def explain(self, examples: list[Example]) -> str | None:
        reply = self.client.complete(prompts.explanation_messages(examples, self.config.constrained),
                                     accept=lambda text: prompts.parse_explanation(text) is not None,
                                     response_format=prompts.explanation_format())
        explanation = prompts.parse_explanation(reply)
        if explanation is None:
            self._count("explain", 1)
        return explanation

    def detect(self, explanation: str, batch: list[Example]) -> list[bool | None]:
        return self.detect_batches(explanation, [batch])[0]

    def fuzz(self, explanation: str, batch: list[Example]) -> list[bool | None]:
        return self.fuzz_batches(explanation, [batch])[0]

    # Several batches of one feature at once, `max_concurrency` requests in flight: what a scorer
    # should call when the endpoint serves requests in parallel (vLLM, hosted APIs).
    def detect_batches(self, explanation: str, batches: list[list[Example]]) -> list[list[bool | None]]:
        conversations = [prompts.detection_messages(explanation, b, self.config.constrained) for b in batches]
        return self._score("detect", conversations, batches)

    def fuzz_batches(self, explanation: str, batches: list[list[Example]]) -> list[list[bool | None]]:
        conversations = [prompts.fuzzing_messages(explanation, b, self.config.constrained) for b in batches]
        return self._score("fuzz", conversations, batches)

    def _score(self, kind: str, conversations, batches) -> list[list[bool | None]]:
        asked = [i for i, batch in enumerate(batches) if batch]   # an empty batch needs no request
        # A reply is cached only when every answer in it parses.
        accepts = [lambda text, n=len(batches[i]): None not in prompts.parse_answers(text, n) for i in asked]
        formats = [prompts.answers_format(len(batches[i])) for i in asked]
        replies = dict(zip(asked, self.client.complete_many([conversations[i] for i in asked], accepts, formats)))
        answers = [prompts.parse_answers(replies[i], len(batch)) if batch else []
                   for i, batch in enumerate(batches)]
        self._count(kind, sum(a is None for batch in answers for a in batch))
        return answers

    def _count(self, kind: str, n: int) -> None:
        if n:
            with self._lock:
                self.parse_failures[kind] += n
