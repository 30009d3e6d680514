"""One superposition sweep (densities x seeds) of one toy configuration, and the expert-specialisation
experiment, each trained as one batch of models and measured with tasks/superposition/metrics.py."""

from __future__ import annotations

import torch

from tasks.superposition import metrics as M
from tasks.superposition.toy_model import ToyModels, ToySpec, sample_features
from tasks.superposition.training import train_models

EVAL_CHUNK = 1024


def label(spec: ToySpec) -> str:
    return f"e{spec.n_experts}m{spec.d_expert}k{spec.top_k}"


@torch.no_grad()
def _evaluate(model: ToyModels, density: torch.Tensor, samples: int, generator: torch.Generator) -> dict:
    """Routing usage, P(expert | feature present), the mean squared error and (ReLU hidden units only)
    the share of a chosen expert's units that fire, over fresh inputs."""
    N, n, E = model.W.shape[0], model.spec.n_features, model.spec.n_experts
    usage, together, present, sq_err, count = torch.zeros(N, E), torch.zeros(N, E, n), torch.zeros(N, n), torch.zeros(N), 0
    units_on = torch.zeros(N)
    for start in range(0, samples, EVAL_CHUNK):
        x = sample_features(N, min(EVAL_CHUNK, samples - start), n, density, generator)
        x_hat, weights, _ = model(x)
        usage += weights.sum(1)
        together += torch.einsum("nbe,nbi->nei", (weights > 0).float(), (x > 0).float())
        present += (x > 0).float().sum(1)
        sq_err += (x - x_hat).pow(2).mean(-1).sum(1)
        # Every input has exactly k chosen experts, so weighting each chunk by its size is exact.
        units_on += M.units_on_when_chosen(x, model.W, (weights > 0).float()) * x.shape[1]
        count += x.shape[1]
    return {"usage": usage / count, "alpha": together / present.unsqueeze(1).clamp_min(1.0),
            "loss": sq_err / count, "units_on": units_on / count}


def run_sweep(spec: ToySpec, densities: tuple, seeds: int, steps: int, batch: int, lr: float, config,
              generator: torch.Generator, checkpoint=None) -> list[dict]:
    """Trains len(densities) * seeds models of `spec` at once (resuming from `checkpoint` when it holds
    a state); one record per model."""
    density = torch.tensor(densities, dtype=torch.float32).repeat(seeds)
    model = ToyModels(spec, len(density), generator)
    # The reference's main sweep: uniform importance (importance_decay = 1).
    importance = config.importance_decay ** torch.arange(spec.n_features, dtype=torch.float32)
    train_models(model, density, importance, steps, batch, lr, generator, checkpoint=checkpoint)
    ev = _evaluate(model, density, config.eval_samples, generator)
    W = model.W.detach()
    fpd = M.features_per_dimension(W, ev["usage"], spec.top_k)
    mono = M.monosemantic(W, config.mono_threshold, config.min_norm)
    represented = W.norm(dim=-1) >= config.min_norm
    dim_global = M.global_dimensionality(W, ev["alpha"])
    inter = M.interference(W)
    alloc = M.allocation(W)
    rows = []
    for i in range(len(density)):
        rep = represented[i]
        rows.append({
            "config": label(spec), "n_experts": spec.n_experts, "d_expert": spec.d_expert, "top_k": spec.top_k,
            "network_sparsity": spec.network_sparsity, "density": float(density[i]), "seed": i // len(densities),
            "features_per_dim": float(fpd[i]), "loss": float(ev["loss"][i]),
            "monosemantic_features": int(mono[i].any(0).sum()),
            "represented_features": int(rep.any(0).sum()),
            "mean_global_dimensionality": float(dim_global[i].mean()),
            "mean_interference": float(inter[i][rep].mean()) if rep.any() else 0.0,
            "mean_max_allocation": float(alloc[i].max(0).values.mean()),
            "expert_usage": [round(float(u), 4) for u in ev["usage"][i]],
            # Meaningless for the tied linear form, whose hidden units are not gated.
            "chosen_units_on": float(ev["units_on"][i]) if spec.hidden == "relu" else None,
        })
    return rows


def run_specialisation(spec: ToySpec, sp, gate_init: str, lr: float, batch: int, config,
                       generator: torch.Generator, checkpoint=None) -> list[dict]:
    """Their Table 1: train at the given density with importance 0.9^perm(i); then for every expert
    with monosemantic features, how often the router picks it when those features are set to 1 (the
    other features sampled as in training), against how often it picks it on the same inputs as drawn."""
    n = spec.n_features
    importance = 0.9 ** torch.randperm(n, generator=generator).float()
    density = torch.full((sp.models_per_init,), sp.density)
    learned = spec.router != "sparsity"  # MoE-X's router has no gate to initialise
    model = ToyModels(spec, sp.models_per_init, generator, gate_init=gate_init if learned else "xavier")
    name = gate_init if learned else "sparsity_router"
    train_models(model, density, importance, sp.steps, batch, lr, generator, checkpoint=checkpoint)
    W = model.W.detach()
    mono = M.monosemantic(W, config.mono_threshold, config.min_norm)
    rows = []
    with torch.no_grad():
        x = sample_features(sp.models_per_init, config.eval_samples, n, density, generator)
        base = model.routing(x)[0] > 0                                          # (N, S, E)
        for i in range(sp.models_per_init):
            for e in range(spec.n_experts):
                feats = mono[i, e].nonzero().flatten()
                if not len(feats):
                    continue
                clamped = x.clone()
                clamped[i][:, feats] = 1.0
                chosen = model.routing(clamped)[0][i, :, e] > 0
                rows.append({"gate_init": name, "model": i, "expert": e, "monosemantic_features": len(feats),
                             "usage_clamped": float(chosen.float().mean()),
                             "usage_baseline": float(base[i, :, e].float().mean())})
    return rows
