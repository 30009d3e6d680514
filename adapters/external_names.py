"""How a model from your own files is named (`hf:<folder>`, `nanogpt:<ckpt.pt>`), apart from the code
that loads it: the command line checks a name before any model library is imported."""

from __future__ import annotations

KINDS = ("hf", "nanogpt")


def is_external(name: str) -> bool:
    return name.split(":", 1)[0] in KINDS and ":" in name
