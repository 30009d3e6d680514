"""How a model from your own files is named (`hf:<folder>`, `nanogpt:<ckpt.pt>`, either optionally
`+sae:<folder>`), apart from the code that loads it: the command line checks a name, and that its
paths are there, before TransformerLens or SAELens is imported."""

from __future__ import annotations

import re
from pathlib import Path

from core.errors import BenchError
from models.external_paths import path_problem

KINDS = ("hf", "nanogpt")


def is_external(name: str) -> bool:
    return name.split(":", 1)[0] in KINDS and ":" in name


def parse(spec: str) -> tuple[str, Path, Path | None]:
    """(kind, the model's path, the SAE folder or None), both resolved; a malformed name or a path that
    is not there is refused, naming what to give."""
    model_spec, plus, sae_spec = spec.partition("+sae:")
    kind, _, path = model_spec.partition(":")
    if kind not in KINDS or not path:
        raise BenchError(f"model {spec!r}: write hf:<folder>, nanogpt:<ckpt.pt>, or either followed by "
                         f"+sae:<SAELens folder>")
    other_part = re.search(r"\+([A-Za-z_-]+):", path)
    if other_part and not Path(path).expanduser().exists():  # a misspelt +sae:, not a path with a + in it
        raise BenchError(f"model {spec!r}: +{other_part[1]}: is not a part this harness reads; write "
                         f"+sae:<SAELens folder> after the model")
    source = Path(path).expanduser().resolve()
    if problem := path_problem(kind, source):
        raise BenchError(problem)
    if not plus:
        return kind, source, None
    if not sae_spec:
        raise BenchError(f"model {spec!r}: +sae: needs a SAELens folder after it")
    folder = Path(sae_spec).expanduser().resolve()
    if problem := path_problem("sae", folder):
        raise BenchError("+" + problem)
    return kind, source, folder
