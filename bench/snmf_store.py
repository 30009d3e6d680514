"""Where dense+snmf's factorisation comes from: fitted here (models/snmf.py) on the MLP hidden units
the SAEs see (the same activation stream, bench/sae_training.activation_stream), kept under checkpoints/
for the task's default layer of the trained model and under .cache/saes/ for other layers and the
random-init floor, and refitted whenever its record (settings, site, model weights) no longer matches.

Saved as safetensors (F, bf16) beside our record. A fit that does not converge (objective not finite)
is refused in one line and nothing is written.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from bench.model_identity import parameters_sha256
from bench import sae_training as st
from core.errors import BenchError
from core.progress import progress
from models import snmf


@dataclass(frozen=True)
class SNMFSettings:
    # Features per d_mlp. The SAEs have 4; semi-NMF's costs grow with features squared per token (both
    # the fit and every encoded token), so cpu keeps one feature per neuron (section 12 of docs/moex.md).
    features_per_d_mlp: int = 1
    fit_tokens: int = 16_384       # columns of X: the fit holds all of them at once
    fit_iterations: int = 100      # pairs of Ding et al.'s updates, about 4 s each at cpu on one thread
    encode_iterations: int = 100   # projected-gradient steps per encoded token (about 4 ms a token at cpu)


# A preset not listed (chess's `short` width sweep, `gpu`) takes the defaults, as the SAEs do.
_TINY = {"features_per_d_mlp": 4, "fit_tokens": 4_096, "fit_iterations": 20, "encode_iterations": 50}
PRESET_SETTINGS = {
    "tiny": _TINY, "tiny-gpt2": _TINY, "tiny-moves": _TINY, "gpu-smoke": _TINY,
    "cpu": {},
    "paper": {"features_per_d_mlp": 4, "fit_tokens": 262_144},
}


def settings_for(preset: str) -> SNMFSettings:
    return replace(SNMFSettings(), **PRESET_SETTINGS.get(preset, {}))


def attach_snmf(adapter, task, preset: str, seed: int, config, device: str, role: str) -> None:
    from bench.sae_store import fitted_folder, refit_if_stale

    hook = adapter.site_hook(config.layer, config.site)
    adapter.check_site(config.site)
    settings = settings_for(preset)
    k = settings.features_per_d_mlp * adapter.model.cfg.d_mlp
    record = {"settings": asdict(settings), "hook": hook, "features": k, "seed": seed,
              "model_weights_sha256": parameters_sha256(adapter.model), "role": role,
              "algorithm": "Ding, Li & Jordan 2010 multiplicative updates (fit); FISTA non-negative least "
                           "squares (codes of new tokens); no winner-take-all sparsity on F"}
    layer = adapter.resolve_layer(config.layer)
    folder = fitted_folder(adapter, task, preset, seed, role, layer == adapter.resolve_layer(type(config)().layer),
                           f"L{layer}")

    def fit(why):
        print(f"{adapter.name}: fitting semi-NMF ({k} features) on {hook} ({role} model; {why})")
        save(fit_on_stream(adapter.model, hook, task.training_data(preset, seed).batch_fn, settings, k, seed),
             folder, record)

    refit_if_stale(folder, record, adapter, task, preset, "factorisation", fit, role)
    factors = load(folder, adapter.model.cfg.d_mlp)
    source = {"source": f"fitted here (models/snmf.py), saved at {folder.name}", **record}
    adapter.use_snmf(factors.to(device), settings.encode_iterations, hook, source)


def fit_on_stream(model, hook: str, batch_fn, settings: SNMFSettings, k: int, seed: int) -> torch.Tensor:
    """F fitted on `settings.fit_tokens` activations at `hook` from the task's training rows."""
    if settings.fit_tokens < k:
        raise BenchError(f"semi-NMF needs at least as many tokens as features to fit ({settings.fit_tokens} < {k})")
    chunk = 1024
    stream = st.activation_stream(model, hook, batch_fn, chunk, seed)
    x = torch.cat([next(stream) for _ in range(math.ceil(settings.fit_tokens / chunk))])[:settings.fit_tokens]
    return fit_checked(x.cpu(), k, settings.fit_iterations, seed, hook)


def fit_checked(x: torch.Tensor, k: int, iterations: int, seed: int, hook: str) -> torch.Tensor:
    """snmf.fit with a progress bar (the relative error ||X - F G^T|| / ||X||), refusing a fit whose
    objective stops being finite."""
    total = x.double().pow(2).sum().item()
    bar = progress(total=iterations, desc="semi-NMF", unit="it")
    error = {}

    def on_step(i, value):
        if not math.isfinite(value):
            raise BenchError(f"semi-NMF fit on {hook} diverged at iteration {i} (objective {value}); nothing written")
        error["last"] = (value / total) ** 0.5 if total else 0.0
        bar.update(1)
        bar.set_postfix(relative_error=f"{error['last']:.4f}")

    try:
        factors = snmf.fit(x, k, iterations, seed, on_step)
    finally:
        bar.close()
    print(f"semi-NMF fitted: ||X - F G^T|| / ||X|| = {error.get('last', float('nan')):.4f} after {iterations} "
          f"iterations on {len(x)} tokens")
    return factors


def save(factors: torch.Tensor, folder: Path, record: dict) -> None:
    """F (bf16 safetensors) and our record, written to a temporary folder and renamed."""
    from safetensors.torch import save_file

    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({"factors": factors.to(torch.bfloat16).contiguous()}, tmp / "snmf.safetensors")
    (tmp / "moexbench.json").write_text(json.dumps(record, indent=2) + "\n")
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)


def load(folder: Path, d_mlp: int) -> torch.Tensor:
    from safetensors.torch import load_file

    try:
        factors = load_file(folder / "snmf.safetensors")["factors"].float()
    except Exception as e:  # noqa: BLE001 - a damaged file raises many kinds; all mean the same
        raise BenchError(f"semi-NMF folder {folder} is damaged ({type(e).__name__}: {str(e)[:160]}); delete it "
                         f"to refit") from None
    if factors.shape[0] != d_mlp:
        raise BenchError(f"semi-NMF at {folder} factorises {factors.shape[0]} units, but this model's MLP has "
                         f"{d_mlp}: it was fitted on another model; delete it to refit")
    return factors
