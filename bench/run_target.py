"""Where one bench run will write, and every refusal that can be decided before any work: the
settings a model is scored with, the results folder they name, and whether that folder may take the
result. Light on purpose (no model library is imported), so the command line can refuse a run before
it starts the task's own preparation."""

from __future__ import annotations

import json
import os
from pathlib import Path

from bench.own_dictionary import variant_part as dictionary_variant
from core.errors import BenchError
from core.own_data import variant_part
from core.paths import checkpoint_stem
from core.results import ensure_writable, refuse_other_measurement, refuse_read_only, result_path
from core.task_config import layer_from_end


def settings_for(adapter_cls, task, overrides) -> object:
    """The task config a model is scored with: the task's defaults, then the model's own
    (`default_settings`, e.g. the attention SAE's site=attn), then the user's ARGS."""
    from core.task_config import apply_overrides

    return apply_overrides(task.Config(), [*adapter_cls.default_settings, *overrides])


def results_variant(task, config, adapter_cls) -> str | None:
    """A setting that makes a different experiment (another layer or site, the language LLM backend, a
    non-uniform toy importance), your own dictionary (bench/own_dictionary.py) or your own data
    (core/own_data.py) writes to its own results folder,
    never over the default run's. Settings are compared with the model's own defaults: those are its
    default run, in the main folder beside every other model's (the attention SAE at site=attn; the
    same SAE at site=mlp is the variant site.mlp)."""
    parts = [task.result_variant(config, settings_for(adapter_cls, task, [])),
             dictionary_variant(adapter_cls), variant_part(task)]
    return "_".join(p for p in parts if p) or None


def model_depth(adapter_cls, task, preset: str) -> int:
    """How many blocks the model `adapter_cls` scores at `preset` has, without building it."""
    if adapter_cls.base_model:
        from bench import registry

        adapter_cls = registry.model_adapter(adapter_cls.base_model)
    if getattr(adapter_cls, "external", False):
        from bench.external_loading import external_shape

        return external_shape(adapter_cls).n_layers
    # Our architectures change a block's MLP, never the number of blocks (tests/test_results.py checks it);
    # the preset's own depth spares importing the MoE code, which loads TransformerLens (seconds)
    return task.dense_config(preset).n_layers


def filed_config(task, config, adapter_cls, preset: str):
    """`config` as a run records and files it: a block counted from the start (layer=3 of 4) counted
    from the end (layer=-1), so one block has one name and one results folder."""
    if task.builds_own_models or not isinstance(getattr(config, "layer", None), int) or config.layer < 0:
        return config  # the model's depth is read only when needed (a file of yours is read for it)
    return layer_from_end(config, model_depth(adapter_cls, task, preset))


def checked_target(adapter_cls, task, config, preset: str, seed: int) -> tuple[object, Path]:
    """(the config as filed, the result's path), once every cheap refusal has passed: nothing is
    created, trained or computed before it."""
    if task.builds_own_models and getattr(adapter_cls, "spec", ""):
        # such a task trains toy models from one of our architectures; a file of yours names none
        raise BenchError(f"MODEL={adapter_cls.spec}: TASK={task.name} trains its own toy models from an architecture "
                         f"this harness defines, so a model from your files has nothing to give it; score it on "
                         f"TASK=chess or TASK=language")
    config = filed_config(task, config, adapter_cls, preset)
    _refuse_what_the_model_lacks(adapter_cls, task, config, preset)
    target = result_path(task.name, adapter_cls.name, preset, seed, results_variant(task, config, adapter_cls))
    ensure_writable(target.parent, create=False)  # a run refused below leaves no empty folder
    refuse_read_only(target)
    refuse_other_measurement(target, config)
    _refuse_what_the_checkpoint_rules_out(adapter_cls, task, preset, seed)
    return config, target


def _refuse_what_the_checkpoint_rules_out(adapter_cls, task, preset: str, seed: int) -> None:
    """What the checkpoint folder decides before the task's labels (minutes of work) are computed: a
    checkpoint of our model trained in another token format, or, for a model not trained yet, a folder
    that cannot take it. A dictionary's own fit is checked where it is fitted (it writes beside its
    model, or under .cache/); a model from your files is never trained here."""
    if task.builds_own_models:
        return  # toy models are not checkpointed
    model_cls = adapter_cls
    if adapter_cls.base_model:
        from bench import registry

        model_cls = registry.model_adapter(adapter_cls.base_model)
    if getattr(model_cls, "external", False):
        return
    stem = checkpoint_stem(task.name, model_cls.name, preset, seed)
    if not stem.with_suffix(".json").is_file():  # its JSON is written last
        if os.environ.get("MOEXBENCH_NO_TRAIN") != "1":  # under NO_TRAIN a missing model is refused by name
            ensure_writable(stem.parent, create=False)
        return
    try:
        meta = json.loads(stem.with_suffix(".json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # damaged: refused by name when the model is loaded
    if isinstance(meta, dict):
        refuse_other_format(task, preset, stem, meta)


def refuse_other_format(task, preset: str, stem: Path, meta: dict) -> None:
    """A checkpoint trained on one token format, asked for under a preset of another: said before the
    config comparison reports a mere vocabulary size."""
    want = task.token_format(preset)
    got = (meta.get("fingerprint") or {}).get("format") or task.untagged_format(preset)
    if want is not None and got is not None and got != want:
        raise BenchError(f"checkpoint {stem}.json was trained in the {got!r} token format, but preset {preset} "
                         f"reads {want!r} now; {task.format_mismatch_fix(preset, stem)}")


def _refuse_what_the_model_lacks(adapter_cls, task, config, preset: str) -> None:
    """A block or site the model has no features at, and a model from your files whose vocabulary or
    context the preset cannot use: refused before a checkpoint is trained or a label computed."""
    if task.builds_own_models:
        return
    from core.adapter import check_layer

    external = adapter_cls if getattr(adapter_cls, "external", False) else getattr(adapter_cls, "base_cls", None)
    if external is not None:  # your model's files are read here: a missing one is named now
        from bench.external_loading import check_fits_before_loading

        check_fits_before_loading(external, task, preset)
    if isinstance(getattr(config, "layer", None), int):
        check_layer(config.layer, model_depth(adapter_cls, task, preset))
    if isinstance(getattr(config, "site", None), str):
        adapter_cls.check_site(config.site)
    folder = _your_sae_folder(adapter_cls)
    if folder is not None and isinstance(getattr(config, "layer", None), int) and isinstance(
            getattr(config, "site", None), str):
        from bench.sae_store import check_folder_fits

        n_layers, d_model, d_mlp = _widths(adapter_cls, external, task, preset)
        # attn.hook_z is read with its heads concatenated: d_model wide
        check_folder_fits(folder, config.layer, config.site, n_layers,
                          {"mlp": d_mlp, "resid": d_model, "attn": d_model})
    transcoder = _your_transcoder_folder(adapter_cls)
    if transcoder is not None and isinstance(getattr(config, "layer", None), int):
        from bench.transcoder_training import check_folder_fits as check_transcoder_fits

        n_layers, d_model, _ = _widths(adapter_cls, external, task, preset)
        check_transcoder_fits(transcoder, config.layer % n_layers, d_model)  # layer is in range: checked above


def _your_sae_folder(adapter_cls) -> Path | None:
    """The SAE folder you named (MODEL=<model>+sae:<folder>, or MOEXBENCH_SAE_PATH for an SAE model)."""
    if getattr(adapter_cls, "dictionary", None) != "sae":
        return None
    if getattr(adapter_cls, "sae_folder", None) is not None and getattr(adapter_cls, "base_cls", None) is not None:
        return adapter_cls.sae_folder
    own = getattr(adapter_cls, "own_dictionary", None) or {}
    return Path(own["value"]) if own.get("variable") == "MOEXBENCH_SAE_PATH" else None


def _your_transcoder_folder(adapter_cls) -> Path | None:
    """The transcoder folder you named (MOEXBENCH_TRANSCODER_PATH with a transcoder model)."""
    own = getattr(adapter_cls, "own_dictionary", None) or {}
    if getattr(adapter_cls, "dictionary", None) != "transcoder" or own.get("variable") != "MOEXBENCH_TRANSCODER_PATH":
        return None
    return Path(own["value"]).expanduser().resolve()


def _widths(adapter_cls, external, task, preset: str) -> tuple[int, int, int | None]:
    """(blocks, d_model, MLP width or None) of the model an SAE reads, from configs alone."""
    if external is not None:
        from bench.external_loading import external_shape

        shape = external_shape(external)
        return shape.n_layers, shape.d_model, shape.d_mlp
    from bench import registry

    cfg = registry.model_adapter(adapter_cls.base_model).model_config(task.dense_config(preset))
    # hook_post is d_mlp wide in a dense or top-k MLP; an MoE layer's z is wider (not read from configs here)
    return cfg.n_layers, cfg.d_model, cfg.d_mlp if cfg.mlp in ("dense", "topk") else None
