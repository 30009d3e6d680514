"""SAEBench's `core` metrics of an adapter's features at their site, computed the way SAELens's
`sae_lens.evals.run_evals` computes them (SAEBench's core eval runs a copy of it, then summarises the
feature densities and weights), so that an SAE, a dense model's neurons and MoE-X's expert units are
measured by one piece of code.

The splice is the adapter's `reconstruct` (an SAE's decode(encode(x)); x itself for units that are
the model's own computation, where it is not run: the spliced model is the clean one), the ablation
is the site's activation replaced by zeros. For every batch of rows of the task's validation tokens
(the rows the result's fidelity metrics used):

- KL(clean || spliced) and KL(clean || ablated) of the next-token distributions, per position over
  every position; kl_div_score = (KL_ablation - KL_splice) / KL_ablation (1: the splice changes
  nothing, 0: as bad as removing the site);
- cross-entropy clean, spliced and ablated, and ce_loss_score (our `loss_recovered`);
- per token x, x_hat: mse = |x - x_hat|^2 (summed over the width), cosine similarity, |x|, |x_hat|,
  their ratio (|x| below 1e-4 divides by 1), l0 = features != 0, l1 = sum of |feature|; each the mean
  over tokens. explained_variance is core/fidelity.py's (the same formula as run_evals);
  explained_variance_legacy and relative_reconstruction_bias are per batch, as SAELens has them;
- feature density: the share of tokens on which each feature is != 0, and SAEBench's summaries of it
  (frac_alive, the shares over 1% and 10%, and those shares weighted by density); the mean over
  features of the largest cosine similarity with another feature's encoder and decoder direction.

Sums over tokens are float64. One choice differs from SAELens, and the export names it: a token whose
activation or reconstruction is all zeros has cosine similarity 1 if both are, else 0 (SAELens: NaN).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from core.fidelity import _Variance  # explained variance has one definition in the code base

NORM_FLOOR = 1e-4  # SAELens's: an input norm below this divides the L2 ratio by 1


def kl_per_position(clean_logits: torch.Tensor, new_logits: torch.Tensor) -> torch.Tensor:
    """KL(p_clean || p_new) of the next-token distributions at every position: (batch, pos). In
    float32 as SAELens has it (float64 would double the largest tensor here, batch x pos x vocab)."""
    log_p = F.log_softmax(clean_logits.float(), -1)
    log_q = F.log_softmax(new_logits.float(), -1)
    return (log_p.exp() * (log_p - log_q)).sum(-1)


def cosine_per_token(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    nx, nh = x.norm(dim=-1), x_hat.norm(dim=-1)
    cos = (x * x_hat).sum(-1) / (nx * nh).clamp_min(torch.finfo(x.dtype).tiny)
    both_zero, one_zero = (nx == 0) & (nh == 0), (nx == 0) ^ (nh == 0)
    return torch.where(both_zero, torch.ones_like(cos), torch.where(one_zero, torch.zeros_like(cos), cos))


def mean_max_cosine(vectors: torch.Tensor | None, chunk: int = 1024) -> float:
    """Mean over rows of the largest cosine similarity with any other row (SAEBench's
    average_max_*_cosine_sim). None stands for the identity basis of a model's own units: distinct
    one-hot directions are orthogonal, so 0."""
    if vectors is None or len(vectors) < 2:
        return 0.0
    unit = F.normalize(vectors.detach().double(), dim=-1)
    best = []
    for start in range(0, len(unit), chunk):  # never the full n x n matrix: SAEs can be wide
        sims = unit[start:start + chunk] @ unit.T
        rows = torch.arange(len(sims))
        sims[rows, rows + start] = -torch.inf
        best.append(sims.max(-1).values)
    return torch.cat(best).mean().item()


def dictionary_directions(adapter) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(encoder, decoder) directions, one row per feature, of an adapter with an SAE (or that names its
    own, as semi-NMF's); (None, None) for features that are the site's own units (the identity)."""
    if hasattr(adapter, "dictionary_directions"):
        return adapter.dictionary_directions()
    sae = getattr(adapter, "sae", None)
    if sae is None:
        return None, None
    return sae.W_enc.T, sae.W_dec


class _Sums:
    """Running sums over batches; each metric is a mean over tokens (or positions) at the end."""

    def __init__(self):
        self.kl = {"sae": 0.0, "ablation": 0.0}
        self.ce = {"clean": 0.0, "sae": 0.0, "ablation": 0.0}
        self.token = dict.fromkeys(("mse", "cossim", "l2_norm_in", "l2_norm_out", "l2_ratio",
                                    "explained_variance_legacy", "l0", "l1"), 0.0)
        self.per_batch_bias: list[float] = []
        self.variance = _Variance()
        self.positions = self.predicted = self.tokens = 0
        self.fired = self.rows_fired = None

    def add_downstream(self, clean, spliced, ablated) -> None:
        """Each argument: (logits, per-token CE) of one run."""
        self.kl["sae"] += kl_per_position(clean[0], spliced[0]).double().sum().item()
        self.kl["ablation"] += kl_per_position(clean[0], ablated[0]).double().sum().item()
        self.positions += clean[0].shape[0] * clean[0].shape[1]
        for name, (_, ce) in (("clean", clean), ("sae", spliced), ("ablation", ablated)):
            self.ce[name] += ce.double().sum().item()
        self.predicted += clean[1].numel()

    def add_site(self, x: torch.Tensor, x_hat: torch.Tensor, features: torch.Tensor) -> None:
        x, x_hat = x.reshape(-1, x.shape[-1]).double(), x_hat.reshape(-1, x.shape[-1]).double()
        acts = features.double()
        flat = acts.reshape(-1, acts.shape[-1])
        self.variance.add(x, x_hat)
        residual = (x - x_hat).pow(2).sum(-1)
        norm_in, norm_out = x.norm(dim=-1), x_hat.norm(dim=-1)
        centred = (x - x.mean(0)).pow(2).sum(-1)
        per_token = {"mse": residual, "cossim": cosine_per_token(x, x_hat), "l2_norm_in": norm_in,
                     "l2_norm_out": norm_out,
                     "l2_ratio": norm_out / torch.where(norm_in < NORM_FLOOR, torch.ones_like(norm_in), norm_in),
                     "explained_variance_legacy": 1 - residual / centred,
                     "l0": (flat != 0).sum(-1).double(), "l1": flat.abs().sum(-1)}
        for name, values in per_token.items():
            self.token[name] += values.sum().item()
        self.per_batch_bias.append((norm_out.pow(2).mean() / (x * x_hat).sum(-1).mean()).item())
        active = acts != 0
        fired, rows_fired = active.sum((0, 1)).double(), active.any(1).sum(0).double()
        self.fired = fired if self.fired is None else self.fired + fired
        self.rows_fired = rows_fired if self.rows_fired is None else self.rows_fired + rows_fired
        self.tokens += len(x)


@torch.no_grad()
def core_metrics(adapter, tokens: torch.Tensor, layer: int, site: str, batch_size: int = 32) -> dict:
    """{"metrics": SAEBench's core categories -> flat metrics, "feature_density": one value per
    feature, "consistent_activation_heuristic": tokens fired per row that fires, per feature (None
    for a feature that never fires)} over `tokens` (rows, pos)."""
    _, written = adapter.splice_hooks(layer, site)  # the ablation zeroes what the splice replaces
    identity = adapter.splice_is_identity(layer, site)  # as in core/fidelity.py: not run, x_hat = x
    sums = _Sums()
    for start in range(0, len(tokens), batch_size):
        batch = tokens[start:start + batch_size]
        seen = {}

        def keep(x, x_hat):
            seen["x"], seen["x_hat"] = x, x_hat

        clean = adapter.logits_and_loss(batch)
        if identity:
            ablated, features = adapter.zero_ablated(batch, written)
            spliced, seen["x"], seen["x_hat"] = clean, features, features
        else:
            spliced = adapter.spliced_logits_and_loss(batch, layer, site, keep)
            ablated = adapter.logits_and_loss(batch, written, torch.zeros_like)
            features = adapter.features(batch, layer, site)
        sums.add_downstream(clean, spliced, ablated)
        sums.add_site(seen["x"], seen["x_hat"], features)
    return _summarise(sums, *dictionary_directions(adapter))


def _summarise(s: _Sums, encoder, decoder) -> dict:
    kl = {k: v / s.positions for k, v in s.kl.items()}
    ce = {k: v / s.predicted for k, v in s.ce.items()}
    token = {k: v / s.tokens for k, v in s.token.items()}
    density = s.fired / s.tokens
    total = density.sum().item()

    def share_over(threshold: float) -> tuple[float, float]:
        over = density > threshold
        return over.double().mean().item(), (density[over].sum().item() / total if total > 0 else 0.0)

    over_1, norm_over_1 = share_over(0.01)
    over_10, norm_over_10 = share_over(0.1)
    metrics = {
        "model_behavior_preservation": {
            "kl_div_score": (kl["ablation"] - kl["sae"]) / kl["ablation"] if kl["ablation"] else float("nan"),
            "kl_div_with_ablation": kl["ablation"], "kl_div_with_sae": kl["sae"]},
        "model_performance_preservation": {
            "ce_loss_score": ((ce["ablation"] - ce["sae"]) / (ce["ablation"] - ce["clean"])
                              if ce["ablation"] != ce["clean"] else float("nan")),
            "ce_loss_with_ablation": ce["ablation"], "ce_loss_with_sae": ce["sae"], "ce_loss_without_sae": ce["clean"]},
        "reconstruction_quality": {
            "explained_variance": s.variance.explained(),
            "explained_variance_legacy": token["explained_variance_legacy"],
            "mse": token["mse"], "cossim": token["cossim"]},
        "shrinkage": {
            "l2_norm_in": token["l2_norm_in"], "l2_norm_out": token["l2_norm_out"], "l2_ratio": token["l2_ratio"],
            "relative_reconstruction_bias": sum(s.per_batch_bias) / len(s.per_batch_bias)},
        "sparsity": {"l0": token["l0"], "l1": token["l1"]},
        "token_stats": {"total_tokens_eval_reconstruction": s.positions,
                        "total_tokens_eval_sparsity_variance": s.tokens},
        "misc_metrics": {
            "freq_over_1_percent": over_1, "freq_over_10_percent": over_10,
            "normalized_freq_over_1_percent": norm_over_1, "normalized_freq_over_10_percent": norm_over_10,
            "average_max_encoder_cosine_sim": mean_max_cosine(encoder),
            "average_max_decoder_cosine_sim": mean_max_cosine(decoder),
            "frac_alive": (density > 0).double().mean().item()},
    }
    heuristic = [f / r if r else None for f, r in zip(s.fired.tolist(), s.rows_fired.tolist())]
    return {"metrics": metrics, "feature_density": density.tolist(), "consistent_activation_heuristic": heuristic}
