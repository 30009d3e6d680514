"""Where dense+transcoder's transcoder comes from: one trained here (bench/transcoder_training.py) on
the model the adapter reads, kept under checkpoints/ for the task's default layer of the trained model
and under .cache/saes/ for other layers and the random-init floor, and retrained whenever its record
(settings, hooks, model weights) no longer matches; or MOEXBENCH_TRANSCODER_PATH=<folder>, a SAELens
transcoder saved on disk, for the trained model (the floor's is always trained here).

Its settings are the TopK SAE's of the preset (bench/sae_training.SAESettings: width 4 x d_mlp, k,
tokens, batch, learning rate), so a transcoder and the TopK SAE are compared at equal width and L0. A
fit saves its state every few minutes under `runs/fits/`, so the same command resumes one that was
killed (bench/sae_resume.LoopCheckpoints).
"""

from __future__ import annotations

import os
from pathlib import Path

from bench.model_identity import parameters_sha256
from bench import sae_training as st
from bench import transcoder_training as tt
from bench.sae_resume import LoopCheckpoints
from bench.sae_store import fitted_folder, refit_if_stale, resume_folder


def attach_transcoder(adapter, task, preset: str, seed: int, config, device: str, role: str) -> None:
    layer = adapter.resolve_layer(config.layer)
    adapter.splice_hooks(layer, config.site)  # refuses a site other than mlp in one line
    path = os.environ.get("MOEXBENCH_TRANSCODER_PATH")
    if role == "trained" and path:
        from models.checkpoint import file_sha256

        folder = Path(path).expanduser().resolve()  # recorded as the result's own_dictionary records it
        transcoder = tt.load_transcoder(folder, layer, adapter.d_model).to(device)
        weights = folder / "sae_weights.safetensors"
        source = {"source": f"SAELens transcoder folder {folder} (MOEXBENCH_TRANSCODER_PATH)",
                  "sae_sha256": file_sha256(weights) if weights.exists() else None}
    else:
        transcoder, source = _trained_here(adapter, task, preset, seed, config, device, role, layer)
    adapter.use_sae(transcoder, tt.hooks(layer)[0], source)


def _trained_here(adapter, task, preset, seed, config, device, role, layer):
    settings = st.settings_for("topk", preset)
    d_sae = settings.latents_per_d_mlp * adapter.model.cfg.d_mlp
    read, write = tt.hooks(layer)
    record = {"settings": settings.__dict__, "hook": read, "hook_out": write, "d_sae": d_sae, "k": settings.k,
              "seed": seed, "model_weights_sha256": parameters_sha256(adapter.model), "role": role,
              "trainer": "moexbench (bench/transcoder_training.py): Adam on the MLP output's squared error, "
                         "gradient norm clipped to 1, unit-norm decoder rows, SAELens's TopK auxiliary loss on dead "
                         "latents (k_aux = d_out / 2; dead after more than "
                         f"{st.dead_feature_window(settings.tokens // settings.batch_tokens)} steps without firing)"}
    at_default = layer == adapter.resolve_layer(type(config)().layer)
    folder = fitted_folder(adapter, task, preset, seed, role, at_default, f"L{layer}")

    def fit(why):
        print(f"{adapter.name}: training a TopK transcoder on {read} -> {write} ({role} model; {why})")
        data = task.training_data(preset, seed)
        checkpoints = LoopCheckpoints(resume_folder(folder), record)
        tt.save_transcoder(tt.train_transcoder(adapter.model, layer, d_sae, settings, data.batch_fn, seed,
                                               checkpoints), folder, record)
        checkpoints.finish()

    refit_if_stale(folder, record, adapter, task, preset, "transcoder", fit, role)
    transcoder = tt.load_transcoder(folder, layer, adapter.d_model).to(device)
    return transcoder, {"source": f"trained here by moexbench's transcoder trainer, saved at {folder.name}", **record}
