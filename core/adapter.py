"""The one thing tasks consume: features at a named site of a model, shape (batch, pos, n_features),
plus the model operations some metrics need. Dense neurons, MoE expert units and SAE latents are
all "features"; a task never asks which kind it has.

An adapter class declares how its model differs from the task's dense-form shape
(`model_config`) and which hook holds its features (`feature_hook`); loading and training are the
same for all (bench/model_store.py). Adding a model = one file with one subclass + a registry line.
"""

from __future__ import annotations

from typing import Callable

import torch

from core.errors import BenchError


def heads_concatenated(act: torch.Tensor) -> torch.Tensor:
    """A per-head activation (batch, pos, head, d_head), such as attn.hook_z, as (batch, pos, head * d_head):
    the attention output before its projection, one vector per token, as attention SAEs read it (SAELens
    flattens hook_z the same way). Other activations pass unchanged."""
    return act.flatten(-2) if act.dim() == 4 else act


class _ActivationRead(Exception):
    """Ends a forward pass once the activation it was run for has been read."""


class FeatureAdapter:
    #: registry name, set by the registry when the class is looked up
    name: str = ""
    #: what the features are, for result provenance
    feature_kind: str = ""
    #: registry name of the model whose checkpoint this adapter reads, when it is not its own
    #: (dense+sae reads dense's); None: the adapter's own model_config and checkpoint
    base_model: str | None = None
    #: what is fitted over that model before features can be read, and handed over by the harness
    #: (bench/sae_store.attach_features): "sae", "transcoder" or "snmf"; None: nothing
    dictionary: str | None = None
    #: task settings ("key=value") this model is scored with unless ARGS says otherwise, e.g. the
    #: attention SAE's site=attn; with exactly these its run is its default one (the main results folder)
    default_settings: tuple[str, ...] = ()

    def __init__(self, model):
        """`model`: models.gpt.GPT, or any TransformerLens-style model (HookedTransformer)."""
        self.model = model

    # --- what a subclass declares ---
    @classmethod
    def model_config(cls, dense):
        """The model this adapter scores (a models.config.GPTConfig), given the task preset's dense-form
        shape (another)."""
        raise NotImplementedError

    def feature_hook(self, layer: int, site: str) -> str:
        return self.site_hook(layer, site)

    # --- shared behaviour ---
    def resolve_layer(self, layer: int) -> int:
        check_layer(layer, self.model.cfg.n_layers)
        return layer % self.model.cfg.n_layers

    @classmethod
    def check_site(cls, site: str) -> None:
        """Refuses a site this adapter has no features at; every site by default (overridden where not)."""

    def site_hook(self, layer: int, site: str) -> str:
        return site_hook_for(layer, site, self.model.cfg.n_layers)

    def _check_hook(self, hook: str) -> None:
        if hook not in self.model.hook_dict:
            raise BenchError(f"hook {hook!r} does not exist; valid names include "
                             f"{', '.join(n for n in self.model.hook_dict if n.startswith('blocks.0.'))}")

    @torch.no_grad()
    def activations(self, tokens: torch.Tensor, hook: str) -> torch.Tensor:
        self._check_hook(hook)
        layer = int(hook.split(".")[1]) if hook.startswith("blocks.") else 0
        read: dict[str, torch.Tensor] = {}

        def read_and_stop(act, hook):
            read["act"] = act
            raise _ActivationRead

        # The pass ends at the hook: nothing after it is computed (an MoE layer's decoder, the block's
        # rest), which is most of the cost when the hook is a wide layer's hidden code.
        try:
            self.model.run_with_hooks(tokens, fwd_hooks=[(hook, read_and_stop)], stop_at_layer=layer + 1)
        except _ActivationRead:
            pass
        if "act" not in read:
            raise BenchError(f"hook {hook!r} was never reached by {type(self.model).__name__}'s forward pass")
        return heads_concatenated(read["act"])

    def features(self, tokens: torch.Tensor, layer: int, site: str = "mlp") -> torch.Tensor:
        """(batch, pos) tokens -> (batch, pos, n_features)."""
        return self.activations(tokens, self.feature_hook(layer, site))

    def reconstruct(self, activation: torch.Tensor) -> torch.Tensor:
        """The activation at the splice's write hook as rebuilt from the one at its read hook (see
        `splice_hooks`). Neurons and expert units are the model's own computation, so this is the
        activation itself; an SAE returns decode(encode(x)); a transcoder maps the MLP's input to its output."""
        return activation

    def splice_hooks(self, layer: int, site: str) -> tuple[str, str]:
        """(read, write): the splice reads the activation at `read` and `reconstruct` of it replaces the
        one at `write`, which is also what the zero ablation zeroes. Features that rebuild their own site
        (neurons, SAEs) read and write one hook."""
        hook = self.site_hook(layer, site)
        return hook, hook

    def splice_is_identity(self, layer: int, site: str) -> bool:
        """Whether the features are the model's own activation at the hook the splice replaces (neurons,
        expert units): the splice then writes back what it read, so it recovers the clean loss by
        construction and core/fidelity.py does not run it. False for anything that rebuilds the activation,
        or reads or splices it its own way."""
        read, write = self.splice_hooks(layer, site)
        return read == write == self.feature_hook(layer, site) and self._inherits(
            "reconstruct", "features", "activations", "spliced_logits_and_loss")

    def _inherits(self, *names: str) -> bool:
        """Whether these methods are this base class's own, neither overridden by a subclass nor replaced
        on the instance."""
        return all(getattr(getattr(self, name), "__func__", None) is getattr(FeatureAdapter, name) for name in names)

    def model_metrics(self, tokens: torch.Tensor, layer: int) -> tuple[dict, dict]:
        """Metrics about the model itself rather than its features (router statistics, ...):
        (flat metrics, details); a dense model has none."""
        return {}, {}

    # --- the model as tasks read it: tasks never reach into self.model ---
    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    @property
    def n_layers(self) -> int:
        return self.model.cfg.n_layers

    @property
    def d_model(self) -> int:
        return self.model.cfg.d_model

    @property
    def n_ctx(self) -> int:
        return self.model.cfg.n_ctx

    @torch.no_grad()
    def logits(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.model(tokens)

    @torch.no_grad()
    def residual(self, tokens: torch.Tensor, layers: list[int]) -> torch.Tensor:
        """The residual stream after each of `layers` (block indices), concatenated:
        (batch, pos, len(layers) * d_model), from one forward pass that stops after the last one."""
        hooks = self._residual_hooks(layers)
        last = max(self.resolve_layer(i) for i in layers)
        _, cache = self.model.run_with_cache(tokens, names_filter=hooks, stop_at_layer=last + 1)
        return torch.cat([cache[h] for h in hooks], dim=-1)

    def _residual_hooks(self, layers: list[int]) -> list[str]:
        return [f"blocks.{self.resolve_layer(i)}.hook_resid_post" for i in layers]

    @torch.no_grad()
    def features_and_residual(self, tokens: torch.Tensor, layer: int, site: str,
                              layers: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """(`features`, `residual(tokens, layers)`) from one forward pass when the features are an
        activation of the model itself; two passes when they are computed from one (an SAE's encoder).
        Reading a hook changes nothing after it (an MoE layer's output included: models/moe.py), so
        both are what the two separate reads give, bit for bit."""
        if not self._inherits("features", "activations"):
            return self.features(tokens, layer, site), self.residual(tokens, layers)
        hook = self.feature_hook(layer, site)
        self._check_hook(hook)
        resid = self._residual_hooks(layers)
        last = max(int(hook.split(".")[1]), *(self.resolve_layer(i) for i in layers))
        _, cache = self.model.run_with_cache(tokens, names_filter=[hook, *resid], stop_at_layer=last + 1)
        return heads_concatenated(cache[hook]), torch.cat([cache[h] for h in resid], dim=-1)

    @torch.no_grad()
    def logits_and_loss(self, tokens: torch.Tensor, hook: str | None = None,
                        replace: Callable[[torch.Tensor], torch.Tensor] | None = None):
        """(logits, next-token cross-entropy at every predicted position (batch, pos - 1)); with `hook`,
        the activation there replaced by replace(activation) (a splice or an ablation)."""
        run = dict(return_type="both", loss_per_token=True)
        if hook is None:
            return self.model(tokens, **run)
        return self.model.run_with_hooks(tokens, fwd_hooks=[(hook, lambda act, hook: replace(act))], **run)

    @torch.no_grad()
    def zero_ablated(self, tokens: torch.Tensor, hook: str):
        """(logits, loss) as `logits_and_loss` gives them with the activation at `hook` zeroed, and that
        activation as it was before (heads concatenated): for features that are the model's own
        activation there, the ablation's pass reads them too (core/fidelity.py)."""
        read: dict[str, torch.Tensor] = {}

        def read_then_zero(act):
            read["act"] = heads_concatenated(act)
            return torch.zeros_like(act)

        logits, loss = self.logits_and_loss(tokens, hook, read_then_zero)
        return (logits, loss), read["act"]

    @torch.no_grad()
    def spliced_logits_and_loss(self, tokens: torch.Tensor, layer: int, site: str,
                                seen: Callable[[torch.Tensor, torch.Tensor], None] | None = None):
        """logits_and_loss with the features' reconstruction spliced in at (layer, site); `seen(x, x_hat)`
        gets each batch's replaced activation and its replacement, heads concatenated (hook_z)."""
        read, write = self.splice_hooks(layer, site)
        captured: dict[str, torch.Tensor] = {}

        def capture(act, hook):
            captured["x"] = heads_concatenated(act)
            return act

        def replace(act, hook):
            x = heads_concatenated(act)
            x_hat = self.reconstruct(captured.pop("x") if read != write else x).to(act.dtype)
            if seen is not None:
                seen(x, x_hat)
            return x_hat.view_as(act)

        hooks = ([(read, capture)] if read != write else []) + [(write, replace)]
        return self.model.run_with_hooks(tokens, fwd_hooks=hooks, return_type="both", loss_per_token=True)

    def loss_per_token(self, tokens: torch.Tensor, hook: str | None = None,
                       replace: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
        return self.logits_and_loss(tokens, hook, replace)[1]


SITE_HOOKS = {"mlp": "blocks.{}.mlp.hook_post", "resid": "blocks.{}.hook_resid_post", "attn": "blocks.{}.attn.hook_z"}


def site_hook_for(layer: int, site: str, n_layers: int) -> str:
    """The hook a site's features are read at, block `layer` of `n_layers` (negative: from the end)."""
    check_layer(layer, n_layers)
    if site not in SITE_HOOKS:
        raise BenchError(f"site {site!r} unknown; choose one of {', '.join(SITE_HOOKS)}")
    return SITE_HOOKS[site].format(layer % n_layers)


def check_layer(layer: int, n_layers: int) -> None:
    """Refuses a block a model of `n_layers` blocks lacks (counted from 0, or negative from the end)."""
    if not -n_layers <= layer < n_layers:
        raise BenchError(f"layer {layer} does not exist: the model has {n_layers} blocks (0..{n_layers - 1}, or "
                         f"negative from the end); choose one with ARGS=\"layer=<l>\"")
