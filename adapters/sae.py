"""dense+sae: the latents of a SAELens SAE over the dense model's activations at the scored site (MLP
hidden units by default, `site=resid` for the residual stream), one adapter per architecture; and
dense+attn-sae, the same on the attention output (`site=attn` by default).

The adapter only reads its SAE: encode for features, decode(encode(x)) for the splice. Which SAE
it gets (a folder or release you name, or one trained here and kept) is the SAE store's business
(bench/sae_store.py), which hands it over with `use_sae` before any feature is read.
"""

from __future__ import annotations

import torch

from core.adapter import FeatureAdapter
from core.errors import BenchError
from models.config import GPTConfig

ARCHITECTURES = ("standard", "topk", "batchtopk", "jumprelu", "gated")


class SAEAdapter(FeatureAdapter):
    dictionary = "sae"  # the SAE store (bench/sae_store.py) hands one over with use_sae
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
            raise BenchError(f"{self.name}: no SAE attached; the harness hands one over (bench/sae_store.py) before "
                             f"reading features")
        if hook != self.sae_hook:
            raise BenchError(f"{self.name}: the SAE reads {self.sae_hook}, not {hook}; re-run with that site")
        return hook

    @torch.no_grad()
    def features(self, tokens: torch.Tensor, layer: int, site: str = "mlp") -> torch.Tensor:
        acts = self.activations(tokens, self._check_site(layer, site))
        return self.sae.encode(acts.float())

    def use_sae(self, sae, hook: str, source: dict) -> None:
        """The SAE to read, the hook it reads, and where it came from (for the result's provenance)."""
        self.sae, self.sae_hook, self.sae_source = sae, hook, source

    @torch.no_grad()
    def reconstruct(self, activation: torch.Tensor) -> torch.Tensor:
        return self.sae.decode(self.sae.encode(activation.float()))

    def stem_name(self) -> str:
        """The name SAEs trained here are saved under."""
        return f"{self.base_model}+sae-{self.architecture}"


class AttnSAEAdapter(SAEAdapter):
    """dense+attn-sae: a TopK SAE on the attention output before its projection, `attn.hook_z` with the
    heads concatenated (Kissane et al. 2024, arXiv 2406.17759), trained and read like every SAE here."""
    default_settings = ("site=attn",)

    @property
    def feature_kind(self) -> str:
        return f"attention-output SAE latents ({self.architecture}, SAELens; attn.hook_z, heads concatenated)"

    def stem_name(self) -> str:
        return f"{self.base_model}+attn-sae-{self.architecture}"


def _variant(architecture: str):
    return type(f"SAE{architecture.title()}Adapter", (SAEAdapter,), {"architecture": architecture})


SAETopKAdapter = SAEAdapter
SAEStandardAdapter = _variant("standard")
SAEBatchTopKAdapter = _variant("batchtopk")
SAEJumpReLUAdapter = _variant("jumprelu")
SAEGatedAdapter = _variant("gated")
