"""The random-init floor's scores, kept on disk between runs (under `.cache/`, never committed).

The floor runs the same pipeline as the trained model (features, coverage, reconstruction, probe) on
a freshly initialised model of the same shape. For one seed, one set of games and one version of the
code it cannot change, yet it is half of a chess evaluation's time. So it is stored under a key of
everything that decides it:
- every tensor the random adapter holds (the model's state and any dictionary attached to it),
- the evaluation and statistics games and the scoring settings,
- the source of the code that computes it (core, models, adapters, the chess task) and the versions
  of torch and TransformerLens.
A change to any of them is a new key, so a stale entry is never read; an unreadable one is recomputed.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Callable

import torch

from core.paths import CACHE, ROOT

# The packages whose code computes a floor: the forward pass and the scoring.
SOURCE_FOLDERS = ("core", "models", "adapters", "tasks/chess")


def _hash_tensor(digest, name: str, tensor: torch.Tensor) -> None:
    t = tensor.detach().cpu().contiguous()
    digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
    digest.update(t.flatten().view(torch.uint8).numpy().tobytes())


def adapter_fingerprint(adapter) -> str:
    """A hash of every tensor the adapter holds: its model's state and each module or tensor attribute
    (an SAE, a transcoder, a semi-NMF factor), so two adapters with one hash compute the same features."""
    digest = hashlib.sha256(type(adapter).__name__.encode())
    for attr, value in sorted(vars(adapter).items()):
        if isinstance(value, torch.nn.Module):
            for name, tensor in sorted(value.state_dict().items()):
                _hash_tensor(digest, f"{attr}.{name}", tensor)
        elif isinstance(value, torch.Tensor):
            _hash_tensor(digest, attr, value)
    return digest.hexdigest()


def source_fingerprint() -> str:
    from importlib.metadata import version

    digest = hashlib.sha256(f"torch {torch.__version__}|tl {version('transformer-lens')}".encode())
    for folder in SOURCE_FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            digest.update(str(path.relative_to(ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def floor_key(adapter, games: list[list[str]], settings: dict) -> str:
    digest = hashlib.sha256()
    for part in (adapter_fingerprint(adapter), source_fingerprint(), json.dumps(settings, sort_keys=True)):
        digest.update(part.encode() + b"\0")
    for split in games:
        digest.update(hashlib.sha256("\n".join(split).encode()).digest())
    return digest.hexdigest()[:24]


def cached_floor(key: str, compute: Callable[[], dict]) -> tuple[dict, bool]:
    """(the floor's scores as a JSON-able dict, whether they came from the cache)."""
    path = CACHE / "chess" / f"floor-{key}.json"
    try:
        return json.loads(path.read_text()), True
    except (OSError, ValueError):
        pass
    scores = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(scores, f)
    Path(tmp).replace(path)  # whole or absent: a killed run leaves no half-written entry
    return json.loads(path.read_text()), False
