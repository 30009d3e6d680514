"""The random-init floor's scores, kept on disk between runs (under `.cache/`, never committed).

The floor runs the same pipeline as the trained model (features, coverage, reconstruction, probe) on
a freshly initialised model of the same shape. For one seed, one set of games and one version of the
code it cannot change, yet it is half of a chess evaluation's time. So it is stored under a key of
what decides it:
- the random adapter: every tensor it holds (the model's state, any dictionary attached to it), every
  plain setting it holds (a semi-NMF's encoder iterations, a TopK's k) and each module's `cfg`;
- the evaluation and statistics games, the scoring settings and the device;
- the source of the code that computes it (core, models, adapters, bench, the chess task) and the
  versions of torch, numpy, TransformerLens and SAELens.
Code outside these (another library's internals) is not in the key: after upgrading one, clear
`.cache/chess/floor-*`. An unreadable entry is recomputed; a cache that cannot be written is skipped.
"""

from __future__ import annotations

import hashlib
import json
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Callable

import torch

from core.paths import CACHE, ROOT
from core.results import atomic_write_text

# The packages whose code computes a floor: the forward pass, the dictionaries' stores and the scoring.
SOURCE_FOLDERS = ("core", "models", "adapters", "bench", "tasks/chess")
LIBRARIES = ("torch", "numpy", "transformer-lens", "sae-lens")
PLAIN = (bool, int, float, str, tuple, list, type(None))


def _hash_tensor(digest, name: str, tensor: torch.Tensor) -> None:
    t = tensor.detach().cpu().contiguous()
    digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
    digest.update(t.flatten().view(torch.uint8).numpy().tobytes())


def adapter_fingerprint(adapter) -> str:
    """A hash of what the adapter computes features from: its class, each module's state and `cfg`,
    each tensor and each plain setting it holds."""
    digest = hashlib.sha256(f"{type(adapter).__module__}.{type(adapter).__qualname__}".encode())
    for attr, value in sorted(vars(adapter).items()):
        if isinstance(value, torch.nn.Module):
            digest.update(f"{attr}|{type(value).__qualname__}|cfg {getattr(value, 'cfg', None)!r}".encode())
            for name, tensor in sorted(value.state_dict().items()):
                _hash_tensor(digest, f"{attr}.{name}", tensor)
        elif isinstance(value, torch.Tensor):
            _hash_tensor(digest, attr, value)
        elif isinstance(value, PLAIN):
            digest.update(f"{attr}={value!r}".encode())
    return digest.hexdigest()


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "absent"


def source_fingerprint() -> str:
    digest = hashlib.sha256("|".join(f"{p} {_version(p)}" for p in LIBRARIES).encode())
    for folder in SOURCE_FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            digest.update(str(path.relative_to(ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def floor_key(adapter, games: list[list[str]], settings: dict) -> str:
    """`settings`: everything else the scores depend on (layer, site, batch size, format, device ...)."""
    digest = hashlib.sha256()
    for part in (adapter_fingerprint(adapter), source_fingerprint(), json.dumps(settings, sort_keys=True, default=str)):
        digest.update(part.encode() + b"\0")
    for split in games:
        digest.update(hashlib.sha256("\n".join(split).encode()).digest())
    return digest.hexdigest()[:24]


def floor_path(key: str) -> Path:
    return CACHE / "chess" / f"floor-{key}.json"


def cached_floor(key: str, compute: Callable[[], dict]) -> tuple[dict, bool]:
    """(the floor's scores as a JSON-able dict, whether they came from the cache). Either way the scores
    are those JSON gives back, so a cached and a fresh run write the same numbers."""
    path = floor_path(key)
    try:
        return json.loads(path.read_text()), True
    except (OSError, ValueError):
        pass
    text = json.dumps(compute())
    try:
        atomic_write_text(path, text)
    except OSError as e:
        print(f"warning: the random-init floor was not cached ({e}); the next run computes it again")
    return json.loads(text), False
