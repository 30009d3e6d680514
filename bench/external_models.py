"""Models and SAEs from the user's own files, named on the command line instead of the registry:

    MODEL=hf:<folder>                    a GPT-2-family checkpoint saved by transformers (language task)
    MODEL=nanogpt:<ckpt.pt>              a nanoGPT checkpoint, e.g. Karvonen's chess GPTs (chess task)
    MODEL=<either>+sae:<SAELens folder>  that model's activations read through the SAE

They are never trained here. Features are the MLP neurons (`blocks.{l}.mlp.hook_post`), or the
SAE's latents; the random-init floor is the same architecture with fresh TransformerLens weights
(and, for an SAE, one of the same architecture trained here by SAELens on that random model, as
for `dense+sae`). Results are written under a plain name made from the path (`hf-gpt2`).
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from baselines.dense import DenseAdapter
from baselines.sae import SAEAdapter
from bench.errors import BenchError
from models.checkpoint import file_sha256

KINDS = ("hf", "nanogpt")


def is_external(name: str) -> bool:
    return name.split(":", 1)[0] in KINDS and ":" in name


def _plain(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_.") or "model"


class ExternalAdapter(DenseAdapter):
    """MLP neurons of a model loaded from the user's files."""
    kind: str = ""
    source: Path = Path()
    spec: str = ""

    @property
    def feature_kind(self) -> str:
        return f"MLP neurons (hook_post) of {self.spec}"

    @classmethod
    def load_model(cls, device: str):
        if cls.kind == "hf":
            from models.hf_gpt2 import load_hf_gpt2

            return load_hf_gpt2(cls.source, device)
        from models.nanogpt_checkpoint import check_meta_vocabulary, load_nanogpt

        meta = cls.source.parent / "meta.pkl"
        if meta.exists():
            from tasks.chess.tokenizer import VOCAB

            check_meta_vocabulary(meta, VOCAB)
        return load_nanogpt(cls.source, device)

    @classmethod
    def load_external(cls, task, preset: str, device: str):
        """(adapter, meta, path) as the model store returns them for a checkpoint of ours."""
        model = cls.load_model(device)
        _check_fits(cls.spec, model, task, preset)
        weights = cls.source if cls.source.is_file() else next(
            p for p in (cls.source / "model.safetensors", cls.source / "pytorch_model.bin") if p.exists())
        meta = {"command": f"loaded from {cls.spec}", "trained_on": "outside this harness",
                "source_sha256": file_sha256(weights)}
        return cls(model), meta, cls.source

    @classmethod
    def random_model(cls, seed: int):
        """The floor: the same TransformerLens architecture with its own fresh initialisation."""
        from transformer_lens import HookedTransformer

        shape = cls.load_model("cpu").cfg
        torch.manual_seed(seed)
        return HookedTransformer(shape, move_to_device=False).eval()


def _check_fits(spec: str, model, task, preset: str) -> None:
    """The task's preset must speak the model's tokens and fit its context."""
    dense = task.dense_config(preset)
    if model.cfg.d_vocab != dense.vocab_size:
        raise BenchError(f"{spec} has a {model.cfg.d_vocab}-token vocabulary but {task.name} preset {preset} reads "
                         f"{dense.vocab_size} tokens; choose a preset with the model's tokenizer "
                         f"({_presets_with_vocab(task, model.cfg.d_vocab)})")
    if model.cfg.n_ctx < dense.n_ctx:
        raise BenchError(f"{spec} reads at most {model.cfg.n_ctx} tokens but {task.name} preset {preset} feeds "
                         f"{dense.n_ctx}; choose a preset with a shorter context")


def _presets_with_vocab(task, vocab: int) -> str:
    fitting = []
    for preset in task.presets:
        try:
            if task.dense_config(preset).vocab_size == vocab:
                fitting.append(preset)
        except BenchError:  # a preset whose tokenizer files are absent here
            continue
    return ", ".join(fitting) or f"none of {task.name}'s presets"


class ExternalSAEAdapter(SAEAdapter):
    """The latents of a SAELens SAE from disk over an external model's activations."""
    sae_folder: Path = Path()

    @property
    def feature_kind(self) -> str:
        return (f"SAE latents (SAELens folder {self.sae_folder}) over {self.base_model}; random-init floor: a "
                f"{self.architecture} SAE trained here on the random-init model")

    def stem_name(self) -> str:
        return f"{self.base_cls.name}+sae-{self.architecture}"

    def attach(self, task, preset: str, seed: int, config, device: str, role: str) -> None:
        if role != "trained":  # the floor: an SAE trained here on the random-init model
            return super().attach(task, preset, seed, config, device, role)
        from baselines import sae_training as st

        hook = self.site_hook(config.layer, config.site)
        width = self.activations(torch.zeros(1, 1, dtype=torch.long, device=device), hook).shape[-1]
        self.sae = st.load_sae(self.sae_folder, hook, width, [hook]).to(device)
        sae_hook = getattr(getattr(self.sae.cfg, "metadata", None), "hook_name", None)
        if sae_hook is not None and sae_hook != hook:
            raise BenchError(f"SAE {self.sae_folder} was trained on {sae_hook}, but the task reads {hook}; pass the "
                             f"layer and site of the SAE's hook (ARGS='layer=<l> site=mlp|resid')")
        self.sae_hook = hook
        self.sae_source = {"source": f"SAELens folder {self.sae_folder}",
                           "sae_sha256": file_sha256(self.sae_folder / "sae_weights.safetensors")
                           if (self.sae_folder / "sae_weights.safetensors").exists() else None}


def adapter_for(spec: str):
    """The adapter class for `hf:<folder>`, `nanogpt:<ckpt.pt>`, optionally `+sae:<folder>`."""
    model_spec, plus, sae_spec = spec.partition("+sae:")
    kind, _, path = model_spec.partition(":")
    if kind not in KINDS or not path:
        raise BenchError(f"model {spec!r}: write hf:<folder>, nanogpt:<ckpt.pt>, or either followed by "
                         f"+sae:<SAELens folder>")
    source = Path(path).expanduser().resolve()
    label = source.name if kind == "hf" else f"{source.parent.name}-{source.stem}"
    model_cls = type(f"External{kind.title()}Adapter", (ExternalAdapter,),
                     {"kind": kind, "source": source, "spec": model_spec, "name": _plain(f"{kind}-{label}")})
    if not plus:
        return model_cls
    if not sae_spec:
        raise BenchError(f"model {spec!r}: +sae: needs a SAELens folder after it")
    folder = Path(sae_spec).expanduser().resolve()
    if not (folder / "cfg.json").is_file():
        raise BenchError(f"+sae:{folder}: not a SAELens SAE folder (no cfg.json); save one with sae.save_model(folder)")
    return type("ExternalSAEAdapter_", (ExternalSAEAdapter,),
                {"sae_folder": folder, "base_model": model_spec, "base_cls": model_cls,
                 "architecture": _sae_architecture(folder), "name": f"{model_cls.name}+sae-{_plain(folder.name)}"})


def _sae_architecture(folder: Path) -> str:
    """The SAE's architecture as its cfg.json names it, for the floor SAE trained here; SAELens
    architectures this harness does not train fall back to top-k (the provenance says which)."""
    import json

    from baselines.sae_training import ARCHITECTURES

    try:
        name = json.loads((folder / "cfg.json").read_text()).get("architecture", "topk")
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BenchError(f"+sae:{folder}: cfg.json is not valid JSON ({e})") from None
    return name if name in ARCHITECTURES else "topk"
