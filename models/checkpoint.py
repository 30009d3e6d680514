"""Checkpoints: safetensors weights plus a JSON config beside them. Never unpickled.

`<stem>.safetensors` holds the weights (bf16 for committed checkpoints), `<stem>.json` the model
config, the training recipe and what the run saw. Loading checks both against each other and
against what the caller expects, and says which field differs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from core.errors import BenchError
from core.results import atomic_write, atomic_write_text
from models.gpt import GPT, GPTConfig


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    atomic_write(path, lambda tmp: save_file({k: v.detach().contiguous() for k, v in tensors.items()}, str(tmp),
                                             metadata=metadata))


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise BenchError(f"checkpoint {path} is unreadable ({e}); delete it to retrain") from None


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# A checkpoint larger than this is written in parts (`<stem>.safetensors`, `<stem>.2.safetensors`,
# ...), so that committed files stay well under the repository's 20 MB limit. A single tensor larger
# than this is a part alone (the `paper` language embedding is): such checkpoints are not committed.
SHARD_BYTES = 12 * 2**20


def shard_path(stem: Path, part: int) -> Path:
    return stem.with_suffix(".safetensors") if part == 1 else stem.parent / f"{stem.name}.{part}.safetensors"


def _shards(tensors: dict[str, torch.Tensor]) -> list[dict[str, torch.Tensor]]:
    """Tensors in order, cut into parts of at most SHARD_BYTES (a larger single tensor is a part alone)."""
    parts, size = [{}], 0
    for name, tensor in tensors.items():
        nbytes = tensor.numel() * tensor.element_size()
        if parts[-1] and size + nbytes > SHARD_BYTES:
            parts.append({})
            size = 0
        parts[-1][name] = tensor
        size += nbytes
    return parts


def save_model(stem: Path, model: GPT, meta: dict, dtype: torch.dtype = torch.bfloat16) -> None:
    """Weights first, then the JSON with their sha256: a JSON beside weights means both are complete,
    and a later change to the weights' bytes is caught on load. `weights_sha256` is the first part's;
    `more_weights_sha256` lists the other parts' in order."""
    parts = _shards({k: v.to(dtype) for k, v in model.state_dict().items()})
    digests = []
    for part, tensors in enumerate(parts, start=1):
        save_tensors(shard_path(stem, part), tensors)
        digests.append(file_sha256(shard_path(stem, part)))
    for path in stem.parent.glob(f"{stem.name}.*.safetensors"):  # parts of an earlier, larger save
        part = path.name[len(stem.name) + 1:-len(".safetensors")]
        if part.isdigit() and int(part) > len(parts):
            path.unlink()
    record = {"model_config": model.cfg.to_json(), **meta, "weights_sha256": digests[0]}
    if len(digests) > 1:
        record["more_weights_sha256"] = digests[1:]
    atomic_write_text(stem.with_suffix(".json"), json.dumps(record, indent=2, sort_keys=True) + "\n")


def weights_digest(stem: Path) -> str:
    """One sha256 for all of a checkpoint's weights (digest_of_meta), computed from the first part's
    bytes for a checkpoint older than recorded checksums."""
    meta = dict(read_meta(stem) or {})
    meta.setdefault("weights_sha256", file_sha256(shard_path(stem, 1)))
    return digest_of_meta(meta)


def digest_of_meta(meta: dict) -> str | None:
    """The file's own sha256 for a one-part checkpoint (as recorded before parts existed), else the
    sha256 of the parts' sha256s in order; None when the JSON records none."""
    if not meta.get("weights_sha256"):
        return None
    parts = [meta["weights_sha256"], *meta.get("more_weights_sha256", [])]
    return parts[0] if len(parts) == 1 else hashlib.sha256("".join(parts).encode()).hexdigest()


def read_meta(stem: Path) -> dict | None:
    """The checkpoint's JSON; None when neither file exists. Half a checkpoint is refused: training
    over it would overwrite what may be an hour's weights."""
    path, weights = stem.with_suffix(".json"), stem.with_suffix(".safetensors")
    if not path.exists() and not weights.exists():
        return None
    if not path.exists() or not weights.exists():
        there, missing = (weights, path) if weights.exists() else (path, weights)
        raise BenchError(f"checkpoint {there} exists but {missing.name} beside it does not; restore it, or delete "
                         f"{there} to retrain")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BenchError(f"checkpoint config {path} is not valid JSON ({e}); restore it or delete both files to retrain") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("model_config"), dict):
        raise BenchError(f"checkpoint config {path} has no model_config object; restore it or delete both files "
                         f"to retrain")
    return meta


def load_model(stem: Path, expected: GPTConfig | None = None) -> tuple[GPT, dict]:
    meta = read_meta(stem)
    if meta is None:
        raise BenchError(f"no checkpoint at {stem}.safetensors/.json")
    try:
        cfg = GPTConfig.from_json(meta["model_config"])
    except (TypeError, ValueError) as e:
        raise BenchError(f"checkpoint config {stem}.json: model_config is not a model config ({e}); restore it or "
                         f"delete both files to retrain") from None
    if expected is not None and cfg != expected:
        diffs = [f"{k}: checkpoint {v!r} != expected {expected.to_json()[k]!r}"
                 for k, v in cfg.to_json().items() if v != expected.to_json()[k]]
        raise BenchError(f"checkpoint {stem}.json does not match the preset ({'; '.join(diffs)}); "
                         f"retrain or pick the matching preset")
    model = GPT(cfg)
    tensors = {}
    # Checkpoints written before the checksum have none to check.
    expected_digests = [meta.get("weights_sha256"), *meta.get("more_weights_sha256", [])]
    for part, digest in enumerate(expected_digests, start=1):
        weights = shard_path(stem, part)
        if not weights.exists():
            raise BenchError(f"checkpoint {stem}.json names {len(expected_digests)} weight files but {weights.name} "
                             f"is missing; restore it, or delete the checkpoint's files to retrain")
        if digest is not None and file_sha256(weights) != digest:
            raise BenchError(f"checkpoint {weights} does not match the sha256 recorded in {stem}.json: the weights "
                             f"changed after they were written; restore them, or delete both files to retrain")
        tensors.update(load_tensors(weights))
    own = model.state_dict()
    missing, extra = sorted(set(own) - set(tensors)), sorted(set(tensors) - set(own))
    wrong = [k for k in own if k in tensors and tensors[k].shape != own[k].shape]
    if missing or extra or wrong:
        raise BenchError(f"checkpoint {stem}.safetensors does not fit its config (missing {missing[:3]}, "
                         f"unexpected {extra[:3]}, wrong shape {wrong[:3]}); delete it to retrain")
    model.load_state_dict({k: v.float() for k, v in tensors.items()})
    return model, meta
