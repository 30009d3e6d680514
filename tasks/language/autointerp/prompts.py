"""The LLM backend's prompts and the parsers of their answers (delphi's protocol, our wording).

Three chat conversations, each a pure function of its inputs so a golden test can pin the text:
- explanation: the explanation examples with active tokens marked <<like this>> and each marked
  token's strength (1-10, relative to the strongest activation among the examples) listed after it;
  the reply is the description.
- detection: the explanation and numbered plain examples; the reply is 0/1 per example (does the
  feature fire in it?).
- fuzzing: the same with each example's `highlighted` tokens marked; 1 if the marks fit the explanation.
Each carries one short worked demonstration (a user turn and its answer), since small models follow
a shown answer far better than a described one.

Constrained requests (the default) carry a JSON schema for the answer (`response_format`, honoured by
llama.cpp's server, vLLM and OpenAI's strict mode): an object `{"explanation": "..."}`, or
`{"answers": [...]}` with exactly one 0 or 1 per example, so a small model cannot wander off the format.
Their prompts ask for that object and their demonstrations answer with it: a small model copies the
demonstration, and a plain-text one copied into a JSON string was cut at its first quote. Without
constraints (`llm_constrained=false`) the reply is a last line `[EXPLANATION]: ...` or a bare JSON list.
Both parsers read both forms.

Parsers return None for an answer they cannot read; a list answer of the wrong length or with values
other than 0/1 is None for every example of the batch (there is no way to align it).
"""

from __future__ import annotations

import json
import re


from tasks.language.autointerp.backend import Example
from tasks.language.autointerp.highlight import active_positions  # 0.3 x the example's own maximum

EXPLAIN_SYSTEM = """\
You are studying one feature of a language model's internals. You will see text examples in which \
the feature is active. Tokens where it is active are marked like <<this>>; consecutive active tokens \
are marked as one span <<like this>>. After each example, its marked tokens are listed with the \
feature's strength on each, from 1 (weak) to 10 (strongest).

Find what the marked tokens have in common, with their context when it matters. Describe it in a few \
words or one short sentence. Give one description, not a list of guesses, and do not mention the \
<< >> marks. """
EXPLAIN_REPLY = {True: 'Reply with a JSON object of the form {"explanation": "<your description>"}.',
                 False: "The last line of your reply must have the form:\n[EXPLANATION]: <your description>"}

EXPLAIN_DEMO_USER = """\
Example 1: the ocean is wid<<er>> than any river
Strengths: "er" 10
Example 2: each year the tree grew tall<<er>> and
Strengths: "er" 6
Example 3: the new box is small<<er>> but heav<<ier>>
Strengths: "er" 8, "ier" 7"""

# No quotation marks in the demonstrated description: copied into a JSON string, one ends the string.
EXPLAIN_DEMO_DESCRIPTION = "The comparative ending -er of adjectives."
EXPLAIN_DEMO_ANSWER = {True: json.dumps({"explanation": EXPLAIN_DEMO_DESCRIPTION}),
                       False: f"[EXPLANATION]: {EXPLAIN_DEMO_DESCRIPTION}"}

_SCORE_TASK = """\
Reply with one number per example, in order: {rule} """
SCORE_REPLY = {True: 'Reply with a JSON object holding the list of numbers, e.g. for 3 examples: '
                     '{"answers": [1, 0, 1]}. Reply with the object only.',
               False: "Reply with a JSON list of the numbers, e.g. for 3 examples: [1, 0, 1]. "
                      "Reply with the list only."}

DETECT_SYSTEM = """\
You are checking a description of one feature of a language model's internals. You will be given \
the description and numbered text examples. For each example, judge from the description alone \
whether the feature is active anywhere in that text.

""" + _SCORE_TASK.format(rule="1 if the feature is active in the example, 0 if it is not.")

FUZZ_SYSTEM = """\
You are checking a description of one feature of a language model's internals. You will be given \
the description and numbered text examples in which some tokens are marked like <<this>>. For each \
example, judge whether the marked tokens are what the description is about; some examples have \
their marks put on unrelated tokens.

""" + _SCORE_TASK.format(rule="1 if the marked tokens fit the description, 0 if they do not.")

_DEMO_DESCRIPTION = "Words naming a colour."
DETECT_DEMO_EXAMPLES = ("she painted the door green and", "the meeting was moved to Tuesday",
                        "under a grey sky the ships")
FUZZ_DEMO_EXAMPLES = ("she painted the door <<green>> and", "the meeting <<was>> moved to Tuesday",
                      "under a <<grey>> sky the ships")
SCORE_DEMO_ANSWER = {True: json.dumps({"answers": [1, 0, 1]}), False: "[1, 0, 1]"}


def visible(token: str) -> str:
    """A token as shown on one line: line breaks and tabs written as \\n and \\t."""
    return token.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")


def mark(tokens: tuple[str, ...] | list[str], positions) -> str:
    """The text with the tokens at `positions` wrapped in << >>, a run of neighbours as one span."""
    chosen = set(int(p) for p in positions)
    out = []
    for i, token in enumerate(tokens):
        opens = i in chosen and (i - 1) not in chosen
        closes = i in chosen and (i + 1) not in chosen
        out.append(("<<" if opens else "") + visible(token) + (">>" if closes else ""))
    return "".join(out)


def _strengths(example: Example, positions: list[int], scale: float) -> str:
    if not positions:
        return "Strengths: none"
    # At least 1: a marked token shown with strength 0 would contradict its mark.
    parts = [f"{json.dumps(visible(example.tokens[i]), ensure_ascii=False)} "
             f"{max(1, int(round(10 * float(example.activations[i]) / scale)))}" for i in positions]
    return "Strengths: " + ", ".join(parts)


def _numbered(texts) -> str:
    return "\n".join(f"Example {i}: {text}" for i, text in enumerate(texts, start=1))


def explanation_messages(examples: list[Example], constrained: bool = True) -> list[dict[str, str]]:
    scale = max((e.max_activation for e in examples), default=0.0) or 1.0
    lines = []
    for i, example in enumerate(examples, start=1):
        positions = active_positions(example)
        lines.append(f"Example {i}: {mark(example.tokens, positions)}")
        lines.append(_strengths(example, positions, scale))
    return [{"role": "system", "content": EXPLAIN_SYSTEM + EXPLAIN_REPLY[constrained]},
            {"role": "user", "content": EXPLAIN_DEMO_USER},
            {"role": "assistant", "content": EXPLAIN_DEMO_ANSWER[constrained]},
            {"role": "user", "content": "\n".join(lines)}]


def _scoring_user(explanation: str, texts) -> str:
    n = len(texts)
    return (f"Description: {explanation}\n\n{_numbered(texts)}\n\n"
            f"Answer with {n} number{'s' if n != 1 else ''}, each 1 or 0.")


def _scoring_messages(system: str, demo_examples, explanation: str, texts, constrained: bool):
    return [{"role": "system", "content": system + SCORE_REPLY[constrained]},
            {"role": "user", "content": _scoring_user(_DEMO_DESCRIPTION, demo_examples)},
            {"role": "assistant", "content": SCORE_DEMO_ANSWER[constrained]},
            {"role": "user", "content": _scoring_user(explanation, texts)}]


def detection_messages(explanation: str, batch: list[Example], constrained: bool = True) -> list[dict[str, str]]:
    return _scoring_messages(DETECT_SYSTEM, DETECT_DEMO_EXAMPLES, explanation,
                             [mark(e.tokens, ()) for e in batch], constrained)


def fuzzing_messages(explanation: str, batch: list[Example], constrained: bool = True) -> list[dict[str, str]]:
    return _scoring_messages(FUZZ_SYSTEM, FUZZ_DEMO_EXAMPLES, explanation,
                             [mark(e.tokens, e.highlighted) for e in batch], constrained)


_EXPLANATION_MARK = re.compile(r"\[\s*explanation\s*\][*_ \t]*:", re.IGNORECASE)
_LIST = re.compile(r"\[[^\[\]]*\]")


def _schema(name: str, properties: dict) -> dict:
    return {"type": "json_schema", "json_schema": {"name": name, "strict": True, "schema": {
        "type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}}}


def explanation_format() -> dict:
    """The response_format of an explanation request: `{"explanation": "<text>"}`."""
    return _schema("explanation", {"explanation": {"type": "string"}})


def answers_format(n: int) -> dict:
    """The response_format of a scoring request: `{"answers": [n numbers, each 0 or 1]}`."""
    return _schema("answers", {"answers": {"type": "array", "items": {"type": "integer", "enum": [0, 1]},
                                           "minItems": n, "maxItems": n}})


def parse_explanation(reply: str) -> str | None:
    """The `explanation` of a `{"explanation": ...}` reply; else the text after the last
    `[EXPLANATION]:` (on its line, or the next non-empty one)."""
    try:
        value = json.loads(reply or "")
    except ValueError:
        value = None
    if isinstance(value, dict) and isinstance(value.get("explanation"), str):
        # a model shown the plain-text demonstration may repeat its marker inside the string
        text = _EXPLANATION_MARK.sub("", value["explanation"]).strip().strip("*_`").strip()
        return text if len(text) >= 3 else None
    matches = list(_EXPLANATION_MARK.finditer(reply or ""))
    if not matches:
        return None
    for line in reply[matches[-1].end():].splitlines():
        text = line.strip().strip("*_`").strip()
        if text:
            return text
    return None


def parse_answers(reply: str, n: int) -> list[bool | None]:
    """The last JSON list in the reply (so also the list of a `{"answers": [...]}` reply), read as n
    answers of 0/1 (true/false also accepted)."""
    failed: list[bool | None] = [None] * n
    for candidate in reversed(_LIST.findall(reply or "")):  # the last list that reads as answers
        try:
            values = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(values, list) and len(values) == n and \
                all(isinstance(v, (int, float)) and v in (0, 1) for v in values):
            return [bool(v) for v in values]
    return failed
