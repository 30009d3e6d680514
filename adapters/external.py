"""Models and SAEs from the user's own files, named on the command line instead of the registry:

    MODEL=hf:<folder>                    a GPT-2-family checkpoint saved by transformers (language task)
    MODEL=nanogpt:<ckpt.pt>              a nanoGPT checkpoint, e.g. Karvonen's chess GPTs (chess task)
    MODEL=<either>+sae:<SAELens folder>  that model's activations read through the SAE

This file names them and says what their features are: the MLP neurons (`blocks.{l}.mlp.hook_post`)
or the SAE's latents. Loading them, checking them against the task and building their random-init
floor is the model store's job (bench/external_loading.py); they are never trained. Results are
written under a plain name made from the path and 6 hex of it (`hf-gpt2-1a2b3c`).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from adapters.dense import DenseAdapter
from adapters.sae import ARCHITECTURES, SAEAdapter
from adapters.external_names import parse
from core.errors import BenchError

def _plain(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_.") or "model"


def _named(label: str, path: Path) -> str:
    """A result name from the path's last parts and 6 hex of the whole path: two `checkpoint-1000`
    folders of different runs never write over each other's results."""
    return f"{_plain(label)}-{hashlib.sha256(str(path).encode()).hexdigest()[:6]}"


class ExternalAdapter(DenseAdapter):
    """MLP neurons of a model loaded from the user's files."""
    external = True
    kind: str = ""      # hf or nanogpt
    source: Path = Path()
    spec: str = ""      # kind:<absolute path>, for messages and provenance

    @property
    def feature_kind(self) -> str:
        return f"MLP neurons (hook_post) of {self.spec}"


class ExternalSAEAdapter(SAEAdapter):
    """The latents of a SAELens SAE from disk over an external model's activations; the store loads
    it from `sae_folder` (bench/sae_store.py)."""
    sae_folder: Path = Path()
    base_cls: type = ExternalAdapter
    spec: str = ""

    @property
    def feature_kind(self) -> str:
        return (f"SAE latents (SAELens folder {self.sae_folder}) over {self.base_model}; random-init floor: a "
                f"{self.architecture} SAE trained here on the random-init model")

    def stem_name(self) -> str:
        return f"{self.base_cls.name}+sae-{self.architecture}"


def adapter_for(spec: str):
    """The adapter class for `hf:<folder>`, `nanogpt:<ckpt.pt>`, optionally `+sae:<folder>`."""
    kind, source, folder = parse(spec)
    label = source.name if kind == "hf" else f"{source.parent.name}-{source.stem}"
    model_spec = f"{kind}:{source}"  # as resolved: what a result records must not depend on where it ran
    model_cls = type(f"External{kind.title()}Adapter", (ExternalAdapter,),
                     {"kind": kind, "source": source, "spec": model_spec, "name": _named(f"{kind}-{label}", source)})
    if folder is None:
        return model_cls
    if not (folder / "cfg.json").is_file():
        raise BenchError(f"+sae:{folder}: not a SAELens SAE folder (no cfg.json); save one with sae.save_model(folder) "
                         f"(a dictionary_learning ae.pt: python -m bench.convert_sae)")
    return type("ExternalSAEAdapter_", (ExternalSAEAdapter,),
                {"sae_folder": folder, "base_model": model_spec, "base_cls": model_cls, "spec": f"{model_spec}+sae:{folder}",
                 "architecture": _sae_architecture(folder), "name": f"{model_cls.name}+sae-{_named(folder.name, folder)}"})


def _sae_architecture(folder: Path) -> str:
    """The SAE's architecture as its cfg.json names it, for the floor SAE trained here; SAELens
    architectures this harness does not train fall back to top-k (the feature kind says which)."""
    try:
        cfg = json.loads((folder / "cfg.json").read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BenchError(f"+sae:{folder}: cfg.json is not valid JSON ({e})") from None
    if not isinstance(cfg, dict):
        raise BenchError(f"+sae:{folder}: cfg.json is not an object; not a SAELens SAE folder")
    name = cfg.get("architecture", "standard")  # SAELens's own default for a cfg.json without one
    return name if name in ARCHITECTURES else "topk"
