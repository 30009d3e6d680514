"""dense+transcoder: the latents of a transcoder (Dunefsky et al. 2024, arXiv 2406.11944) over the dense
model's MLP: a wide TopK MLP trained to map the MLP's input (after its layer norm) to its output. The
latents are the features; the splice runs the transcoder in the MLP's place, so loss recovered and
explained variance are of the MLP's output, and the zero ablation removes the MLP's output.

A transcoder is a SAELens SAE whose decoder writes to another hook, so this adapter is the SAE adapter
with two hooks; training, saving and loading it is bench/transcoder_store.py's.
"""

from __future__ import annotations

import torch

from adapters.sae import SAEAdapter
from core.errors import BenchError


class TranscoderAdapter(SAEAdapter):
    dictionary = "transcoder"  # the transcoder store hands one over with use_sae

    @property
    def feature_kind(self) -> str:
        return (f"transcoder latents ({self.architecture}, SAELens Transcoder): MLP input "
                f"(ln2.hook_normalized) -> MLP output (hook_mlp_out)")

    @classmethod
    def check_site(cls, site: str) -> None:
        if site != "mlp":
            raise BenchError(f"{cls.name}: a transcoder replaces the MLP, so its only site is mlp (got site={site}); "
                             f"drop the site setting")

    def splice_hooks(self, layer: int, site: str) -> tuple[str, str]:
        self.check_site(site)
        layer = self.resolve_layer(layer)
        return f"blocks.{layer}.ln2.hook_normalized", f"blocks.{layer}.hook_mlp_out"

    def feature_hook(self, layer: int, site: str) -> str:
        return f"{self.splice_hooks(layer, site)[0]} -> transcoder encode"

    def _check_site(self, layer: int, site: str) -> str:
        read = self.splice_hooks(layer, site)[0]
        if self.sae is None:
            raise BenchError(f"{self.name}: no transcoder attached; the harness hands one over "
                             f"(bench/transcoder_store.py) before reading features")
        if read != self.sae_hook:
            raise BenchError(f"{self.name}: the transcoder reads {self.sae_hook}, not {read}; re-run with that layer")
        return read

    @torch.no_grad()
    def reconstruct(self, activation: torch.Tensor) -> torch.Tensor:
        """The MLP's output as the transcoder computes it from the MLP's input: its forward, so that a
        SAELens skip transcoder of your own keeps its skip term."""
        return self.sae(activation.float())

    def stem_name(self) -> str:
        return f"{self.base_model}+transcoder-{self.architecture}"
