"""Where an SAE adapter's SAE comes from, first match wins:

- the folder named on the command line (`MODEL=<model>+sae:<folder>`, adapters/external.py);
- MOEXBENCH_SAE_PATH=<folder>: a SAELens SAE saved on disk (`SAE.load_from_disk`);
- MOEXBENCH_SAE_RELEASE=<release>/<sae id>: a pretrained SAELens release (`SAE.from_pretrained`; needs
  hub access, so never exercised offline here);
- otherwise one trained here by SAELens's trainer (bench/sae_training.py), kept under checkpoints/
  for the task's default site and under .cache/saes/ for other sites and the random-init floor, and
  retrained whenever its record (settings, site, model weights) no longer matches.

The first three apply to the trained model; the random-init floor always gets an SAE trained here
on the random model. `attach_features` is what the harness calls once a model is loaded.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import torch

from bench.model_identity import parameters_sha256
from bench import sae_training as st
from bench.sae_resume import FitCheckpoints
from core.errors import BenchError
from core.locks import exclusive
from core.paths import CACHE, RUNS


def attach_features(adapter, task, preset: str, seed: int, config, device: str, role: str) -> None:
    """Give the adapter what its features need beyond the model (an SAE adapter: its SAE; a transcoder
    adapter: its transcoder, bench/transcoder_store.py; semi-NMF: its factors, bench/snmf_store.py). `role` is
    "trained" or "random" (the random-init floor)."""
    if adapter.dictionary == "sae":
        attach_sae(adapter, task, preset, seed, config, device, role)
    elif adapter.dictionary == "transcoder":
        from bench.transcoder_store import attach_transcoder

        attach_transcoder(adapter, task, preset, seed, config, device, role)
    elif adapter.dictionary == "snmf":
        from bench.snmf_store import attach_snmf

        attach_snmf(adapter, task, preset, seed, config, device, role)
    elif adapter.dictionary is not None:
        raise ValueError(f"{adapter.name}: unknown dictionary {adapter.dictionary!r}; use sae, transcoder or snmf")


def attach_sae(adapter, task, preset: str, seed: int, config, device: str, role: str) -> None:
    layer, site = config.layer, config.site
    hook = adapter.site_hook(layer, site)
    probe = torch.zeros(1, 1, dtype=torch.long, device=device)
    widths = {adapter.site_hook(layer, s): adapter.activations(probe, adapter.site_hook(layer, s)).shape[-1]
              for s in ("mlp", "resid", "attn")}
    width, sites = widths[hook], [f"{h} ({w} wide)" for h, w in widths.items()]
    path, release = os.environ.get("MOEXBENCH_SAE_PATH"), os.environ.get("MOEXBENCH_SAE_RELEASE")
    folder = getattr(adapter, "sae_folder", None)
    if role == "trained" and folder:
        sae, source = _from_named_folder(folder, hook, width, sites, device, adapter.n_layers)
    elif role == "trained" and path:
        path = Path(path).expanduser().resolve()  # recorded as the result's own_dictionary records it
        sae = st.load_sae(path, hook, width, sites, yours=True, n_layers=adapter.n_layers).to(device)
        source = {"source": f"SAELens folder {path} (MOEXBENCH_SAE_PATH)"}
    elif role == "trained" and release:
        sae = _from_release(release, hook, width, sites, device, adapter.n_layers)
        source = {"source": f"SAELens release {release} (MOEXBENCH_SAE_RELEASE)"}
    else:
        sae, source = _trained_here(adapter, task, preset, seed, config, device, role, hook)
    adapter.use_sae(sae, hook, source)


def check_sae_site(sae, label: str, hook: str, n_layers: int | None = None) -> None:
    check_sae_hook(getattr(getattr(sae.cfg, "metadata", None), "hook_name", None), label, hook, n_layers)


def check_sae_hook(trained_on: str | None, label: str, hook: str, n_layers: int | None = None) -> None:
    """An SAE that records the hook it was trained on (`trained_on`) must read that activation.
    SAELens's residual SAEs often name `blocks.{l}.hook_resid_pre`, the same tensor as
    `blocks.{l-1}.hook_resid_post`. The fix names the block to score, when the model (`n_layers`
    blocks) has it."""
    if trained_on is None or trained_on == hook:
        return
    match = re.fullmatch(r"blocks\.(\d+)\.(hook_resid_pre|hook_resid_post|mlp\.hook_post|attn\.hook_z)", trained_on)
    if match and match[2] == "hook_resid_pre" and hook == f"blocks.{int(match[1]) - 1}.hook_resid_post":
        return
    if not match or (match[2] == "hook_resid_pre" and int(match[1]) == 0):
        fix = "this harness reads blocks.<l>.mlp.hook_post, blocks.<l>.hook_resid_post and blocks.<l>.attn.hook_z only"
    else:
        layer = int(match[1]) - (match[2] == "hook_resid_pre")
        site = {"mlp.hook_post": "mlp", "attn.hook_z": "attn"}.get(match[2], "resid")
        fix = (f"score that site with ARGS='layer={layer} site={site}'" if n_layers is None or layer < n_layers
               else f"this model has {n_layers} blocks (0-{n_layers - 1}), so the SAE was trained on another model; "
                    f"give one trained on this model's activations")
    raise BenchError(f"{label} was trained on {trained_on}, but the task reads {hook}; {fix}")


def check_folder_fits(folder: Path, layer: int, site: str, n_layers: int, widths: dict[str, int | None]) -> None:
    """Your SAE folder: the hook it was trained on and its width, from its cfg.json (read as SAELens
    reads it, the pre-6.0 layout included) and the model's shape (`widths` per site; None: not known
    from configs), before any work. Loading checks the same on the built model; what cannot be read
    here (a damaged folder, an unknown architecture) is named there."""
    from core.adapter import site_hook_for

    cfg = saelens_cfg(folder)
    if cfg is None:
        return
    hooks = {s: site_hook_for(layer, s, n_layers) for s in widths}
    trained_on = cfg["metadata"].get("hook_name") if isinstance(cfg.get("metadata"), dict) else None
    d_in = cfg.get("d_in")
    if not isinstance(d_in, int) or d_in != encoder_rows(folder):
        return  # weights unreadable or not of the width cfg.json says: loading names the folder as damaged
    # The hook first, as loading checks them: its message names the layer and site to score instead.
    if isinstance(trained_on, str):
        check_sae_hook(trained_on, f"SAE {folder}", hooks[site], n_layers)
    if widths[site] is not None and d_in != widths[site]:
        known = [f"{hooks[s]} ({width} wide)" for s, width in widths.items() if width is not None]
        raise st.other_width(folder, d_in, hooks[site], widths[site], known)


def saelens_cfg(folder: Path) -> dict | None:
    """The folder's cfg.json as SAELens reads it (`handle_config_defaulting`: the pre-6.0 layout too), or
    None when it cannot be read so; loading then says what is wrong with the folder."""
    from sae_lens.loading.pretrained_sae_loaders import handle_config_defaulting

    try:
        cfg = handle_config_defaulting(json.loads((folder / "cfg.json").read_text(encoding="utf-8")))
    except Exception:  # noqa: BLE001 - unreadable or unknown to SAELens: loading says which
        return None
    return cfg if isinstance(cfg, dict) else None


def encoder_rows(folder: Path) -> int | None:
    """The input width of the SAE's weights file (W_enc's rows), from its header alone; None when the
    file or the tensor cannot be read."""
    from safetensors import safe_open

    try:
        with safe_open(str(folder / "sae_weights.safetensors"), framework="pt") as f:
            return f.get_slice("W_enc").get_shape()[0] if "W_enc" in f.keys() else None
    except Exception:  # noqa: BLE001 - a damaged file: loading says so
        return None


def _from_named_folder(folder: Path, hook: str, width: int, sites: list, device: str, n_layers: int):
    from models.checkpoint import file_sha256

    sae = st.load_sae(folder, hook, width, sites, yours=True, n_layers=n_layers).to(device)
    weights = folder / "sae_weights.safetensors"
    return sae, {"source": f"SAELens folder {folder}", "sae_sha256": file_sha256(weights) if weights.exists() else None}


def fitted_folder(adapter, task, preset: str, seed: int, role: str, at_default: bool, tag: str) -> Path:
    """Where a dictionary fitted here (SAE, transcoder, semi-NMF) lives: beside the checkpoints for the
    trained model at its default layer and site, else under .cache/saes/ (`tag` names layer and site;
    on your own data the folder names it too)."""
    from bench.model_store import checkpoint_stem
    from core.own_data import run_suffix

    stem = checkpoint_stem(task.name, adapter.stem_name(), preset, seed)
    if role == "trained" and at_default:
        return stem
    # On your own data a cached fit has a folder of its own: none is shared across data.
    return CACHE / "saes" / task.name / f"{stem.name}-{role}-{tag}{run_suffix(task)}"


def refit_if_stale(folder: Path, record: dict, adapter, task, preset: str, what: str, fit,
                   role: str = "trained") -> None:
    """Call fit(why), which fits and saves, unless `folder` holds a `what` whose record is exactly
    `record`; with training switched off (MOEXBENCH_NO_TRAIN=1) that is one line instead (for the
    random-init floor's, `role` "random", naming the setting that skips the floor). One process
    fits a folder at a time: a second one that needs the same fit waits, then uses what the first saved.
    On the user's own data the record gains the data it is fitted on, and nothing is fitted into the
    committed checkpoints (core/own_data.py)."""
    from bench.model_store import training_allowed
    from core.own_data import identity, refuse_training_into_committed

    saved = st.read_record(folder)
    if saved == record:  # fitted on the committed data: read as it is, on any data, as models are
        return
    data = identity(task)
    if data is not None:  # fitted on your data: recorded, so no run on other data ever reuses it
        record["data"] = data  # in place: `fit` saves this same dict
        if saved == record:
            return
    why = "none saved" if saved is None else "saved one is stale (settings, site, model or data changed)"
    if not training_allowed():
        skip = " without MOEXBENCH_NO_TRAIN, or skip the floor with ARGS=\"random_floor=false\"" \
            if role == "random" else ""
        raise BenchError(f"{adapter.name}: no up-to-date {what} at {folder} ({why}) and MOEXBENCH_NO_TRAIN=1; "
                         f"fit it with `make bench MODEL={adapter.name} TASK={task.name} PRESET={preset}`{skip}")
    refuse_training_into_committed(task, folder, f"the {what} of {adapter.name}")
    with exclusive(fit_lock(folder), f"the {what} at {folder} is being fitted by another process"):
        if st.read_record(folder) == record:
            print(f"{adapter.name}: the {what} at {folder} was fitted meanwhile by the other process; using it")
            return
        fit(why)


def fit_lock(folder: Path) -> Path:
    """The lock of a fitted folder, kept under runs/ so that checkpoints/ only ever holds what is committed."""
    return RUNS / "fits" / folder.parent.name / f"{folder.name}.lock"


def resume_folder(folder: Path) -> Path:
    """Where an SAE or transcoder fit for `folder` saves its state until it is done, beside its lock."""
    return RUNS / "fits" / folder.parent.name / f"{folder.name}.resume"


def _trained_here(adapter, task, preset, seed, config, device, role, hook):
    from bench.run_target import settings_for as model_settings

    settings = st.settings_for(adapter.architecture, preset, **adapter.settings_overrides)
    d_sae = settings.latents_per_d_mlp * adapter.model.cfg.d_mlp
    record = {"settings": settings.__dict__, "hook": hook, "d_sae": d_sae, "seed": seed,
              "model_weights_sha256": parameters_sha256(adapter.model), "role": role}
    default = model_settings(type(adapter), task, [])  # the model's default layer and site
    changed = "".join(f"-{k}{v}" for k, v in sorted(adapter.settings_overrides.items()))
    at_default = (config.layer, config.site) == (default.layer, default.site) and not adapter.settings_overrides
    folder = fitted_folder(adapter, task, preset, seed, role, at_default,
                           f"L{adapter.resolve_layer(config.layer)}-{config.site}{changed}")

    def fit(why):
        print(f"{adapter.name}: training a {adapter.architecture} SAE with SAELens on {hook} ({role} model; {why})")
        data = task.training_data(preset, seed)
        checkpoints = FitCheckpoints(resume_folder(folder), record)
        st.save_sae(st.train_sae(adapter.model, hook, d_sae, settings, data.batch_fn, seed, device, checkpoints),
                    folder, record)
        checkpoints.finish()

    refit_if_stale(folder, record, adapter, task, preset, "SAE", fit, role)
    sae = st.load_sae(folder).to(device)
    from models.checkpoint import file_sha256

    # The SAE's own digest too: its weights are not always committed, and a refit can differ.
    return sae, {"source": f"trained here by SAELens's SAETrainer, saved at {folder.name}", **record,
                 "sae_sha256": file_sha256(folder / "sae_weights.safetensors")}


def _from_release(release: str, hook: str, width: int, sites: list, device: str, n_layers: int):
    from sae_lens import SAE

    name, sep, sae_id = release.partition("/")
    if not sep:
        raise BenchError(f"MOEXBENCH_SAE_RELEASE={release!r}: write it as <release>/<sae id>")
    try:
        sae = SAE.from_pretrained(name, sae_id, device=device)
    except Exception as e:  # noqa: BLE001 - the hub unreachable, a file missing from it: all end the run the same way
        why = " ".join(str(e).split())[:160]  # one line, however many the library's message has
        raise BenchError(f"MOEXBENCH_SAE_RELEASE={release}: SAELens could not load it ({type(e).__name__}: {why}); "
                         f"where the hub is unreachable, load it on a machine that reaches it, save it with "
                         f"save_model(folder) and point MOEXBENCH_SAE_PATH at that folder") from None
    check_sae_site(sae, f"SAE {release}", hook, n_layers)  # the hook first: its message names what to score
    if sae.cfg.d_in != width:
        raise BenchError(f"SAE {release} reads {sae.cfg.d_in}-wide activations but site {hook} is {width} wide; "
                         f"valid sites: {', '.join(sites)}")
    return sae.eval()
