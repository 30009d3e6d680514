"""dense+snmf: semi-NMF codes of the dense model's MLP hidden units (Shafran et al. 2025, arXiv
2506.10920; Ding, Li & Jordan's algorithm, models/snmf.py): each token's activation is approximated by
F g, F's columns the features' weights over the neurons, g >= 0 the token's codes, which are the
features. The splice replaces the hidden units by F g.

The adapter only reads its factorisation; fitting and keeping it is bench/snmf_store.py's.
"""

from __future__ import annotations

import torch

from core.adapter import FeatureAdapter
from core.errors import BenchError
from models import snmf
from models.config import GPTConfig


class SNMFAdapter(FeatureAdapter):
    dictionary = "snmf"  # the SNMF store hands one over with use_snmf
    base_model = "dense"

    def __init__(self, model):
        super().__init__(model)
        self.factors = None  # F (d_mlp, k), float32
        self.encode_iterations = 0
        self.snmf_hook = None
        self.sae_source = {}  # where the factorisation came from, for provenance (as the SAE adapters')

    @property
    def feature_kind(self) -> str:
        k = "" if self.factors is None else f"{self.factors.shape[1]} "
        return f"semi-NMF codes ({k}features; Ding et al.'s updates, codes by non-negative least squares)"

    @classmethod
    def model_config(cls, dense: GPTConfig) -> GPTConfig:
        return dense

    @classmethod
    def check_site(cls, site: str) -> None:
        if site != "mlp":
            raise BenchError(f"{cls.name}: semi-NMF factorises the MLP's hidden units (non-negative codes of "
                             f"neuron groups), so its only site is mlp (got site={site}); drop the site setting")

    def feature_hook(self, layer: int, site: str) -> str:
        return f"{self.site_hook(layer, site)} -> semi-NMF codes"

    def use_snmf(self, factors: torch.Tensor, encode_iterations: int, hook: str, source: dict) -> None:
        self.factors, self.encode_iterations, self.snmf_hook, self.sae_source = \
            factors, encode_iterations, hook, source

    def _check_site(self, layer: int, site: str) -> str:
        hook = self.site_hook(layer, site)
        if self.factors is None:
            raise BenchError(f"{self.name}: no factorisation attached; the harness hands one over "
                             f"(bench/snmf_store.py) before reading features")
        if hook != self.snmf_hook:
            raise BenchError(f"{self.name}: the factorisation was fitted on {self.snmf_hook}, not {hook}")
        return hook

    @torch.no_grad()
    def features(self, tokens: torch.Tensor, layer: int, site: str = "mlp") -> torch.Tensor:
        acts = self.activations(tokens, self._check_site(layer, site))
        return snmf.encode(acts.float(), self.factors, self.encode_iterations)

    @torch.no_grad()
    def reconstruct(self, activation: torch.Tensor) -> torch.Tensor:
        codes = snmf.encode(activation.float(), self.factors, self.encode_iterations)
        return snmf.decode(codes, self.factors)

    def dictionary_directions(self):
        """(encoder, decoder) rows per feature: the rows of F's pseudo-inverse (the linear least-squares
        code, before the non-negativity constraint) and F's columns."""
        return torch.linalg.pinv(self.factors), self.factors.T

    def stem_name(self) -> str:
        return f"{self.base_model}+snmf"
