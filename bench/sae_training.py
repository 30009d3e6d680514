"""SAEs for the dense+sae adapters, trained by SAELens's own `SAETrainer` on a stream of the model's
activations at the site, saved in SAELens's format (bf16 weights) and loaded with
`SAE.load_from_disk`. No SAE code of ours: we only feed activations and pick settings.

A saved SAE carries `moexbench.json` with the settings and the sha256 of the model checkpoint it was
trained on; an SAE whose record differs from the request is stale and is retrained, never reused.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from adapters.sae import ARCHITECTURES
from core.adapter import heads_concatenated
from core.errors import BenchError


@dataclass(frozen=True)
class SAESettings:
    architecture: str
    # Latents per model: 4 x d_mlp, the MoE-X unit count of the same preset (M * D = 8 * 2 * d_model),
    # so SAE latents and MoE-X units are compared at equal feature counts whatever the site.
    latents_per_d_mlp: int = 4
    tokens: int = 1_000_000
    batch_tokens: int = 4096
    lr: float = 1e-3
    # Sparsity, measured on the move-format cpu dense model (4 x 256, blocks.1.mlp.hook_post, 4,096
    # latents, 1M tokens, seed 0; python -m experiments.sae_calibrate ARCH:SETTING:VALUE --tokens 1000000):
    # top-k k 32 -> L0 32 (explained variance 0.74, loss recovered 0.84: results/chess/dense+sae.json);
    # standard L1 10 -> L0 43 (0.63, 0.73); gated L1 10 -> L0 58 (0.79, 0.86); JumpReLU at L0
    # coefficient 2, by its initial threshold: 0.5 -> L0 862 (0.96, 0.98; 28% of latents dead), 0.7 ->
    # L0 80 (0.60, 0.70; 97% dead), 0.85 and 1.0 -> about 0 (read at step 100 of 244). SAELens trains the
    # threshold itself and Adam moves it by about lr (1e-3) a step, so in 244 steps the initial one
    # decides. The same 1M tokens in batches of 1,024 (976 steps, the same compute) let it move: from 0.5,
    # L0 90 (0.92, 0.95; 40% dead). On the random-init model (the floor's SAE; --random-init) the same
    # settings leave 1% of latents alive, at L0 46 (explained variance 0.65). On the earlier
    # character-format model (6 x 128, 250k tokens, 2,048 latents): standard L1 1/3/10 -> L0 364/158/85,
    # gated 1/3/10 -> 590/249/112, and JumpReLU's L0 stayed near 1,470 for L0 coefficients 0.5-8.
    # Sweeps with the chess scores: experiments/sae_sweep.py.
    k: int = 32                       # topk, batchtopk
    l1_coefficient: float = 10.0      # standard, gated (on activations normalised to norm sqrt(d_in))
    l0_coefficient: float = 2.0       # jumprelu
    jumprelu_init_threshold: float = 0.5

    def sparsity_knob(self) -> tuple[str, float]:
        """The setting a sparsity sweep varies for this architecture."""
        # JumpReLU's L0 follows its initial threshold, not its L0 coefficient, in so few steps
        name = {"topk": "k", "batchtopk": "k", "jumprelu": "jumprelu_init_threshold"}.get(self.architecture,
                                                                                          "l1_coefficient")
        return name, getattr(self, name)


# Per preset, what differs from SAESettings' defaults (which are the cpu preset's). cpu: 1M tokens
# (244 steps of 4096) is what 2 cores afford for the five architectures plus a random-init floor in
# one sitting, about 20 CPU-minutes each at the move-format shapes (the calibration above);
# Karvonen's chess SAEs saw hundreds of millions, which the paper preset's 200M approaches. tiny: seconds, and JumpReLU's initial threshold at the
# scale where a 16-step SAE on a 32-wide model does not come out all dead. A preset not listed
# (chess's `short` width sweep, `gpu`) takes the defaults, which its result's provenance records.
_TINY = {"tokens": 16_384, "batch_tokens": 1024, "jumprelu_init_threshold": 0.05}
PRESET_SETTINGS = {
    "tiny": _TINY, "tiny-gpt2": _TINY, "tiny-moves": _TINY, "gpu-smoke": _TINY,
    "cpu": {},
    "paper": {"tokens": 200_000_000},
}
# Per architecture, what it trains with instead of SAESettings' defaults (a preset's own values win).
# Not a new default: every saved SAE records all settings, so a changed default would make the
# committed SAEs of the other architectures stale. JumpReLU takes its 1M tokens in four times the steps,
# so that its threshold can move (see the measurements above).
ARCHITECTURE_SETTINGS = {"jumprelu": {"batch_tokens": 1024, "jumprelu_init_threshold": 0.5}}


def settings_for(architecture: str, preset: str, **overrides) -> SAESettings:
    if architecture not in ARCHITECTURES:
        raise BenchError(f"SAE architecture {architecture!r} unknown; choose one of {', '.join(ARCHITECTURES)}")
    return dataclasses.replace(SAESettings(architecture), **{**ARCHITECTURE_SETTINGS.get(architecture, {}),
                                                             **PRESET_SETTINGS.get(preset, {}), **overrides})


def _training_sae(settings: SAESettings, d_in: int, d_sae: int, hook: str, n_steps: int):
    import sae_lens
    from sae_lens.saes.sae import SAEMetadata

    common = dict(d_in=d_in, d_sae=d_sae, normalize_activations="expected_average_only_in",
                  metadata=SAEMetadata(hook_name=hook, model_name="moexbench"))
    warm_up = n_steps // 20
    s = settings
    if s.architecture == "standard":
        cfg = sae_lens.StandardTrainingSAEConfig(l1_coefficient=s.l1_coefficient, l1_warm_up_steps=warm_up, **common)
        return sae_lens.StandardTrainingSAE(cfg)
    if s.architecture == "gated":
        cfg = sae_lens.GatedTrainingSAEConfig(l1_coefficient=s.l1_coefficient, l1_warm_up_steps=warm_up, **common)
        return sae_lens.GatedTrainingSAE(cfg)
    if s.architecture == "topk":
        return sae_lens.TopKTrainingSAE(sae_lens.TopKTrainingSAEConfig(k=s.k, **common))
    if s.architecture == "batchtopk":
        return sae_lens.BatchTopKTrainingSAE(sae_lens.BatchTopKTrainingSAEConfig(k=s.k, **common))
    cfg = sae_lens.JumpReLUTrainingSAEConfig(l0_coefficient=s.l0_coefficient, l0_warm_up_steps=warm_up,
                                             jumprelu_init_threshold=s.jumprelu_init_threshold, **common)
    return sae_lens.JumpReLUTrainingSAE(cfg)


@torch.no_grad()
def activation_stream(model, hook: str, batch_fn, batch_tokens: int, seed: int, mix_batches: int = 8,
                      skip_batches: int = 0):
    """Endless (batch_tokens, d_in) activations at `hook`: token rows from the task's training data,
    pooled over `mix_batches` forward passes and shuffled so a batch mixes many games. `skip_batches`
    (a resumed fit) starts where a stream that had yielded that many would go on, running the model
    only for the pool it resumes in."""
    layer = int(hook.split(".")[1])
    gen = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    step = 1_000_000  # batches the language model never trained on at the same step numbers
    while True:
        tokens = [batch_fn(step + i) for i in range(mix_batches)]
        step += mix_batches
        rows = sum(t.shape[0] * t.shape[1] for t in tokens)  # one activation row per token
        if skip_batches >= rows // batch_tokens:  # a pool already read: only its shuffle advances the generator
            torch.randperm(rows, generator=gen)
            skip_batches -= rows // batch_tokens
            continue
        pooled = []
        for batch in tokens:
            _, cache = model.run_with_cache(batch.to(device), names_filter=[hook], stop_at_layer=layer + 1)
            acts = heads_concatenated(cache[hook])
            pooled.append(acts.reshape(-1, acts.shape[-1]).float())
        acts = torch.cat(pooled)
        assert len(acts) == rows, "skip_batches counts one activation row per token"
        acts = acts[torch.randperm(len(acts), generator=gen).to(device)]
        yield from acts[: len(acts) // batch_tokens * batch_tokens].split(batch_tokens)[skip_batches:]
        skip_batches = 0


def dead_feature_window(n_steps: int) -> int:
    """Steps without firing after which a latent counts as dead (SAELens's dead_feature_window: the
    latents its TopK auxiliary loss revives): a quarter of the run, at least 50 steps."""
    return max(50, n_steps // 4)


def train_sae(model, hook: str, d_sae: int, settings: SAESettings, batch_fn, seed: int, device: str,
              checkpoints=None):
    """A trained SAELens SAE on `model`'s activations at `hook`. With `checkpoints` (bench/sae_resume.py)
    the fit saves its state every few minutes and, run again, resumes from the last one."""
    from sae_lens import LoggingConfig, SAETrainer
    from sae_lens.config import SAETrainerConfig

    d_in = _width(model, hook, batch_fn)
    n_steps = settings.tokens // settings.batch_tokens
    torch.manual_seed(seed)
    sae = _training_sae(settings, d_in, d_sae, hook, n_steps)
    cfg = SAETrainerConfig(total_training_samples=settings.tokens, train_batch_size_samples=settings.batch_tokens,
                           lr=settings.lr, lr_end=settings.lr / 10, lr_scheduler_name="constant",
                           lr_warm_up_steps=max(1, n_steps // 50), lr_decay_steps=n_steps // 5, device=device,
                           dead_feature_window=dead_feature_window(n_steps), feature_sampling_window=max(50, n_steps // 4),
                           n_batches_for_norm_estimate=min(100, max(4, n_steps // 10)),
                           logger=LoggingConfig(log_to_wandb=False))
    trainer = SAETrainer(cfg=cfg, sae=sae, data_provider=iter(()))
    read = checkpoints.restore(trainer) if checkpoints is not None else 0
    stream = activation_stream(model, hook, batch_fn, settings.batch_tokens, seed, skip_batches=read)
    trainer.data_provider = checkpoints.saving(trainer, stream, read) if checkpoints is not None else stream
    with _library_bars_silenced_when_quiet():
        return trainer.fit()


@contextlib.contextmanager
def _library_bars_silenced_when_quiet():
    """SAELens draws its own tqdm bars (training, the norm estimate) with no switch to turn them off, and
    tqdm reads TQDM_DISABLE only when it is first imported (by torch, before our flags are parsed): so
    under --quiet or CI each of those modules' tqdm is swapped for a disabled one while it trains."""
    from sae_lens.training import activation_scaler, sae_trainer

    from core.progress import quiet

    modules = [m for m in (sae_trainer, activation_scaler) if hasattr(m, "tqdm")]
    if not quiet():
        yield
        return
    originals = [m.tqdm for m in modules]
    for m, original in zip(modules, originals):
        m.tqdm = functools.partial(original, disable=True)
    try:
        yield
    finally:
        for m, original in zip(modules, originals):
            m.tqdm = original


def _width(model, hook: str, batch_fn) -> int:
    layer = int(hook.split(".")[1])
    _, cache = model.run_with_cache(batch_fn(0)[:1].to(next(model.parameters()).device), names_filter=[hook],
                                    stop_at_layer=layer + 1)
    return heads_concatenated(cache[hook]).shape[-1]


def save_sae(sae, folder: Path, record: dict) -> None:
    """SAELens's inference format with bf16 weights, plus our record; written to a temporary folder
    and renamed, so an interrupted save leaves no half SAE."""
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    sae = sae.to(torch.bfloat16)
    sae.cfg.dtype = "bfloat16"
    sae.save_inference_model(tmp)
    (tmp / "moexbench.json").write_text(json.dumps(record, indent=2) + "\n")
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)


def load_sae(folder: Path, expected_hook: str | None = None, expected_d_in: int | None = None, valid_sites=(),
             yours: bool = False, n_layers: int | None = None):
    """An SAE from a SAELens folder, in float32, checked against the site it will read: the hook it
    records first (that message names the layer and site to score; `n_layers`: the model's blocks, to
    tell another model's SAE), then its width. `yours`: a folder the user named, which this harness
    never retrains, so a damaged one is not told to be deleted."""
    from sae_lens import SAE
    from sae_lens.registry import SAE_CLASS_REGISTRY, SAE_TRAINING_CLASS_REGISTRY

    fix = ("save it again with SAELens' save_inference_model, or give another folder" if yours
           else "delete it to retrain, or restore it")
    if not (folder / "cfg.json").exists():
        raise BenchError(f"{folder} is not a SAELens SAE folder (no cfg.json); {fix}")
    try:
        cfg = json.loads((folder / "cfg.json").read_text(encoding="utf-8"))
        architecture = cfg.get("architecture", "standard") if isinstance(cfg, dict) else None
        if isinstance(architecture, str) and architecture in SAE_TRAINING_CLASS_REGISTRY \
                and architecture not in SAE_CLASS_REGISTRY:  # e.g. batchtopk: saved by save_model while training
            raise BenchError(f"{folder}/cfg.json: architecture {architecture!r} is a training SAE; save it with "
                             f"SAELens' save_inference_model (which writes the SAE it infers with) and give "
                             f"that folder")
        if isinstance(architecture, str) and architecture not in SAE_CLASS_REGISTRY:
            raise BenchError(f"{folder}/cfg.json: architecture {architecture!r} is not one SAELens knows "
                             f"({', '.join(sorted(SAE_CLASS_REGISTRY))}); {fix}")
        sae = SAE.load_from_disk(str(folder), dtype="float32")
    except BenchError:
        raise
    except Exception as e:  # noqa: BLE001 - SAELens raises many kinds for a damaged folder; all mean the same
        said = " ".join(str(e).split())[:160]  # torch's size-mismatch text spans lines
        raise BenchError(f"SAE folder {folder} is damaged ({type(e).__name__}: {said}); {fix}") from None
    if expected_hook is not None:
        from bench.sae_store import check_sae_site

        check_sae_site(sae, f"SAE {folder}", expected_hook, n_layers)
    if expected_d_in is not None and sae.cfg.d_in != expected_d_in:
        raise other_width(folder, sae.cfg.d_in, expected_hook, expected_d_in, valid_sites)
    return sae.eval()


def other_width(folder: Path, d_in: int, hook: str, width: int, valid_sites) -> BenchError:
    return BenchError(f"SAE at {folder} reads {d_in}-wide activations but site {hook} is {width} wide; choose a "
                      f"site of that width ({', '.join(valid_sites)}) or another SAE")


def read_record(folder: Path) -> dict | None:
    path = folder / "moexbench.json"
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BenchError(f"{path} is not valid JSON ({e}); delete {folder} to retrain the SAE") from None
    if not isinstance(record, dict):
        raise BenchError(f"{path} holds a {type(record).__name__}, not our record of the SAE; delete {folder} to retrain")
    return record
