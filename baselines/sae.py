"""dense+sae: the latents of a SAELens SAE trained on the dense model's activations at the scored site
(MLP hidden units by default, `site=resid` for the residual stream), one adapter per architecture.

Where the SAE comes from, first match wins:
- MOEXBENCH_SAE_PATH=<folder>: a SAELens SAE saved on disk (`SAE.load_from_disk`);
- MOEXBENCH_SAE_RELEASE=<release>/<sae id>: a pretrained SAELens release (`SAE.from_pretrained`; needs
  hub access, so never exercised offline here);
- otherwise one trained here by SAELens's trainer (baselines/sae_training.py), kept under checkpoints/
  for the task's default site and under .cache/saes/ for other sites and the random-init floor, and
  retrained whenever its record (settings, site, model weights) no longer matches.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch

from bench.adapter import FeatureAdapter
from bench.cache import CACHE
from bench.errors import BenchError
from models.config import GPTConfig



def weights_digest(model) -> str:
    """sha256 of the model's parameters: ties an SAE to the exact weights it was trained on."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()


class SAEAdapter(FeatureAdapter):
    base_model = "dense"
    architecture = "topk"
    #: SAESettings fields changed from the preset's (a sparsity sweep's points); such SAEs live in .cache
    settings_overrides: dict = {}

    def __init__(self, model):
        super().__init__(model)
        self.sae = None
        self.sae_hook = None
        self.sae_source = {}

    @property
    def feature_kind(self) -> str:
        return f"SAE latents ({self.architecture}, SAELens)"

    @classmethod
    def model_config(cls, dense: GPTConfig) -> GPTConfig:
        return dense

    def feature_hook(self, layer: int, site: str) -> str:
        return f"{self.site_hook(layer, site)} -> SAE encode"

    def _check_site(self, layer: int, site: str) -> str:
        hook = self.site_hook(layer, site)
        if self.sae is None:
            raise BenchError(f"{self.name}: no SAE attached; the harness calls attach() after loading the model")
        if hook != self.sae_hook:
            raise BenchError(f"{self.name}: the SAE reads {self.sae_hook}, not {hook}; re-run with that site")
        return hook

    @torch.no_grad()
    def features(self, tokens: torch.Tensor, layer: int, site: str = "mlp") -> torch.Tensor:
        acts = self.activations(tokens, self._check_site(layer, site))
        return self.sae.encode(acts.float())

    @torch.no_grad()
    def reconstruct(self, activation: torch.Tensor) -> torch.Tensor:
        return self.sae.decode(self.sae.encode(activation.float()))

    def attach(self, task, preset: str, seed: int, config, device: str, role: str) -> None:
        from baselines import sae_training as st

        layer, site = config.layer, config.site
        hook = self.site_hook(layer, site)
        probe = torch.zeros(1, 1, dtype=torch.long, device=device)
        widths = {self.site_hook(layer, s): self.activations(probe, self.site_hook(layer, s)).shape[-1]
                  for s in ("mlp", "resid")}
        width, sites = widths[hook], [f"{h} ({w} wide)" for h, w in widths.items()]
        path, release = os.environ.get("MOEXBENCH_SAE_PATH"), os.environ.get("MOEXBENCH_SAE_RELEASE")
        if role == "trained" and path:
            self.sae = st.load_sae(Path(path), hook, width, sites).to(device)
            self.sae_source = {"source": f"SAELens folder {path} (MOEXBENCH_SAE_PATH)"}
        elif role == "trained" and release:
            self.sae = _from_release(release, hook, width, sites, device)
            self.sae_source = {"source": f"SAELens release {release} (MOEXBENCH_SAE_RELEASE)"}
        else:
            self.sae, self.sae_source = self._trained_here(task, preset, seed, config, device, role, hook)
        self.sae_hook = hook

    def stem_name(self) -> str:
        """The name SAEs trained here are saved under."""
        return f"{self.base_model}+sae-{self.architecture}"

    def _trained_here(self, task, preset, seed, config, device, role, hook):
        from baselines import sae_training as st
        from bench.model_store import checkpoint_stem, training_allowed

        settings = st.settings_for(self.architecture, preset, **self.settings_overrides)
        d_sae = settings.latents_per_d_mlp * self.model.cfg.d_mlp
        record = {"settings": settings.__dict__, "hook": hook, "d_sae": d_sae, "seed": seed,
                  "model_weights_sha256": weights_digest(self.model), "role": role}
        default = type(config)()
        stem = checkpoint_stem(task.name, self.stem_name(), preset, seed)
        if role == "trained" and (config.layer, config.site) == (default.layer, default.site) and not self.settings_overrides:
            folder = stem
        else:
            changed = "".join(f"-{k}{v}" for k, v in sorted(self.settings_overrides.items()))
            folder = CACHE / "saes" / task.name / f"{stem.name}-{role}-L{self.resolve_layer(config.layer)}-{config.site}{changed}"
        if st.read_record(folder) != record:
            why = "none saved" if st.read_record(folder) is None else "saved one is stale (settings, site or model changed)"
            if not training_allowed():
                raise BenchError(f"{self.name}: no up-to-date SAE at {folder} ({why}) and MOEXBENCH_NO_TRAIN=1; "
                                 f"train it with `make bench MODEL={self.name} TASK={task.name} PRESET={preset}`")
            print(f"{self.name}: training a {self.architecture} SAE with SAELens on {hook} ({role} model; {why})")
            data = task.training_data(preset, seed)
            sae = st.train_sae(self.model, hook, d_sae, settings, data.batch_fn, seed, device)
            st.save_sae(sae, folder, record)
        sae = st.load_sae(folder).to(device)
        return sae, {"source": f"trained here by SAELens's SAETrainer, saved at {folder.name}", **record}


def _from_release(release: str, hook: str, width: int, sites: list, device: str):
    from sae_lens import SAE

    name, sep, sae_id = release.partition("/")
    if not sep:
        raise BenchError(f"MOEXBENCH_SAE_RELEASE={release!r}: write it as <release>/<sae id>")
    sae = SAE.from_pretrained(name, sae_id, device=device)
    if sae.cfg.d_in != width:
        raise BenchError(f"SAE {release} reads {sae.cfg.d_in}-wide activations but site {hook} is {width} wide; "
                         f"valid sites: {', '.join(sites)}")
    return sae.eval()


def _variant(architecture: str):
    return type(f"SAE{architecture.title()}Adapter", (SAEAdapter,), {"architecture": architecture})


SAETopKAdapter = SAEAdapter
SAEStandardAdapter = _variant("standard")
SAEBatchTopKAdapter = _variant("batchtopk")
SAEJumpReLUAdapter = _variant("jumprelu")
SAEGatedAdapter = _variant("gated")
