"""SAEBench's eval-output documents (sae-bench 0.6.0's `BaseEvalOutput` envelope) for one result of
ours: `core` from metrics computed by bench/core_metrics.py, `autointerp` from the language task's
detection scores, and `moexbench_<task>` for a task SAEBench has no eval type for. Plain dicts, shaped
as SAEBench's classes expect (tests/test_export_saebench.py validates them with those classes). What
each field holds, and where it differs from SAEBench's meaning, is in docs/export.md."""

from __future__ import annotations

import datetime
import json
import math
import time
import uuid
from pathlib import Path

from bench.core_metrics import dictionary_directions
from core.errors import BenchError
from models.checkpoint import digest_of_meta

CORE_NOTES = [
    "computed by moexbench (bench/core_metrics.py), not by SAEBench's runner, with the definitions of SAELens's "
    "run_evals (sae-lens 6.54; checked against run_evals in tests/test_export_saebench.py)",
    "tokens: the task's validation rows, the rows of the result's fidelity metrics, not OpenWebText; every "
    "position counts (no special tokens excluded); the document separator is predicted like any token",
    "splice = the adapter's reconstruction of the site's activation: an SAE's decode(encode(x)); x itself for "
    "units that are the model's own computation (dense neurons, MoE and MoE-X expert units), whose KL with the "
    "splice is float rounding (below 1e-7) and kl_div_score 1 unless the ablation's own KL is as small (a barely "
    "trained model); a transcoder's output replaces the MLP's output (hook_mlp_out), computed from the MLP's "
    "input; semi-NMF's F g replaces the hidden units; ablation = the replaced activation set to zeros (for a "
    "transcoder the MLP's output, not its hidden units)",
    "mse: per token the squared error summed over the site's width, averaged over tokens (SAELens's run_evals; "
    "SAEBench 0.6.0's own copy of run_evals further divides by the batch's token count)",
    "l0, l1 and feature density count a feature where it is != 0 and l1 sums absolute values, as run_evals; our "
    "results' l0_fidelity and dead_fraction count > 0, so a GELU neuron's small negative values count here only",
    "cossim of a token whose activation or reconstruction is all zeros: 1 if both are, else 0 (run_evals: NaN)",
    "for model units the dictionary is the identity at the site, so average_max_encoder_cosine_sim and "
    "average_max_decoder_cosine_sim are 0 by construction; for SAEs and transcoders they come from W_enc and "
    "W_dec; for semi-NMF from the rows of F's pseudo-inverse and F's columns",
    "eval_result_details is empty: SAEBench's per-feature rows need encoder weights that model units lack; "
    "per-feature densities are in eval_result_unstructured",
    "token_stats count the tokens read (rows x context); relative_reconstruction_bias and "
    "explained_variance_legacy are per batch of batch_size_prompts rows, as in run_evals",
]

# What SAEBench's autointerp config fields hold when they describe our protocol.
AUTOINTERP_FIELDS = (
    "dead_latent_threshold = the fewest activating windows a scored feature needs; buffer 0 = fixed consecutive "
    "windows, not centred on an activation; act_threshold_frac = the share of a window's maximum that marks a "
    "token active; n_iw_sampled_ex_for_generation = explanation windows drawn evenly over activation deciles (not "
    "importance-weighted); n_iw_sampled_ex_for_scoring = activating test windows, over the same deciles; "
    "n_random_ex_for_scoring = non-activating test windows; max_tokens_in_explanation 0 = no limit; "
    "llm_context_size = the sequence length activations are read at")


def identity(record: dict, adapter, config, tokens) -> tuple[dict, dict]:
    """(SAEBench's sae_lens_* and sae_cfg_dict fields, what the features are). As SAEBench does for SAEs
    outside SAELens's registry, the release and id are our own names (moexbench_<task>_<preset>, the
    model). An SAE's sae_cfg_dict is SAELens's own, untouched, so that SAELens can read it back."""
    from core.results import versions

    sae = getattr(adapter, "sae", None)
    hook = adapter.splice_hooks(config.layer, config.site)[1]  # what the splice replaces
    if sae is not None:
        cfg = json.loads(json.dumps(sae.cfg.to_dict(), default=str))
    else:  # the model's own units, or semi-NMF codes (not a SAELens SAE either)
        width = adapter.activations(tokens[:1, :1], hook).shape[-1]
        factors = getattr(adapter, "factors", None)
        cfg = {"architecture": "model_units" if factors is None else "semi_nmf", "d_in": width,
               "d_sae": width if factors is None else factors.shape[1], "dtype": model_dtype(adapter),
               "apply_b_dec_to_input": False, "normalize_activations": "none",
               "metadata": {"hook_name": hook, "context_size": int(tokens.shape[1]), "model_name": record["model"]}}
    about = {"model": record["model"], "feature_kind": adapter.feature_kind,
             "feature_hook": adapter.feature_hook(config.layer, config.site), "site_hook": hook,
             "base_model": adapter.base_model or record["model"]}
    ids = {"sae_lens_release_id": f"moexbench_{record['task']}_{record['preset']}", "sae_lens_id": record["model"],
           "sae_lens_version": versions().get("sae-lens") if sae is not None else None, "sae_cfg_dict": cfg}
    return ids, about


def model_dtype(adapter) -> str:
    return str(adapter.dtype).removeprefix("torch.")


def core_doc(record: dict, core: dict, ids: dict, about: dict, adapter, meta: dict, tokens, batch: int,
             config) -> dict:
    """`core`: computed now, so its id is new and its time is now."""
    from core.results import git_sha

    rows, batches = len(tokens), math.ceil(len(tokens) / batch)
    eval_config = {
        "model_name": _model_name(record, about), "llm_dtype": model_dtype(adapter), "batch_size_prompts": batch,
        "n_eval_reconstruction_batches": batches, "n_eval_sparsity_variance_batches": batches,
        "dataset": f"moexbench {record['task']} validation rows of preset {record['preset']} (docs/export.md)",
        "context_size": int(tokens.shape[1]), "compute_kl": True, "compute_ce_loss": True, "compute_l2_norms": True,
        "compute_sparsity_metrics": True, "compute_variance_metrics": True,
        "compute_featurewise_density_statistics": True,
        "compute_featurewise_weight_based_metrics": any(d is not None for d in dictionary_directions(adapter)),
        "exclude_special_tokens_from_reconstruction": False, "verbose": False}
    unstructured = {
        "feature_density": [round(d, 8) for d in core["feature_density"]],
        "consistent_activation_heuristic": core["consistent_activation_heuristic"],
        "moexbench": {"notes": CORE_NOTES, "features": about, "layer": config.layer, "site": config.site,
                      "rows": rows,
                      "checkpoint_weights_sha256": digest_of_meta(meta) or meta.get("source_sha256"),
                      "features_from": getattr(adapter, "sae_source", None) or None, "result": _provenance(record)}}
    return _envelope("core", eval_config, core["metrics"], [], unstructured, ids, str(uuid.uuid4()),
                     int(time.time() * 1000), git_sha())


def autointerp_doc(record: dict, rows: list[dict], ids: dict, about: dict, variant: str | None) -> dict:
    """`autointerp`: our detection score is its autointerp_score; its config fields hold our nearest
    settings, and `moexbench_protocol` names the protocol. `rows`: the result's per-feature records."""
    m, cfg = record["metrics"], record["config"]
    ai = record.get("details", {}).get("autointerp", {})
    rules, backend = ai.get("rules"), ai.get("backend")
    if "detection" not in m or not rules or not backend:
        raise BenchError(f"{record['_path']}: no detection score, sampling rules or backend in it; rerun "
                         f"`make bench MODEL={record['model']} TASK=language PRESET={record['preset']}`")
    scores = [r["detection"] for r in rows if r.get("detection") is not None]
    if not scores or len(scores) != m.get("detection_n_features", len(scores)):
        raise BenchError(f"{Path(record['_path']).with_suffix('.jsonl')} holds {len(scores)} detection scores but "
                         f"the result counts {m.get('detection_n_features')}; rerun the bench that wrote them")
    mean = sum(scores) / len(scores)
    # n - 1, as SAEBench's torch.std; a single scored feature has no spread: 0 rather than NaN
    std = math.sqrt(sum((s - mean) ** 2 for s in scores) / (len(scores) - 1)) if len(scores) > 1 else 0.0
    text = record.get("details", {}).get("text", {})
    n_ctx, n_test, llm = text.get("n_ctx", 0), rules["n_test_per_decile"] * 10, backend != "lexical"
    negatives = ("verified non-activating" if rules["negatives"] == "verified"
                 else "non-activating (the weakest windows where too few are silent)")
    protocol = (f"delphi-style detection (docs/language.md section 4): balanced accuracy over {n_test} activating "
                f"+ {rules['n_negative']} {negatives} 32-token windows per feature, explained from "
                f"{rules['n_explain']} decile-stratified windows; backend {backend}"
                + (f" ({cfg.get('llm_model')})" if llm else " (deterministic token lookup)"))
    eval_config = {
        "model_name": _model_name(record, about),
        "n_latents": int(m.get("autointerp_features_sampled", len(scores))), "override_latents": None,
        "dead_latent_threshold": rules["min_activating"], "random_seed": record["provenance"].get("seed", 0),
        "dataset_name": "moexbench language held-out split (data/language/CARD.md)",
        "llm_context_size": n_ctx, "llm_batch_size": cfg.get("batch_size"), "llm_dtype": "float32",
        "buffer": 0, "no_overlap": True, "act_threshold_frac": 0.3, "total_tokens": n_ctx * text.get("interp_seqs", 0),
        "scoring": True, "max_tokens_in_explanation": 0 if llm else 10, "use_demos_in_explanation": llm,
        "n_top_ex_for_generation": 0, "n_iw_sampled_ex_for_generation": rules["n_explain"],
        "n_top_ex_for_scoring": 0, "n_random_ex_for_scoring": rules["n_negative"],
        "n_iw_sampled_ex_for_scoring": n_test,
        "moexbench_protocol": protocol, "moexbench_backend": backend, "moexbench_field_meanings": AUTOINTERP_FIELDS}
    kept = ("explanation", "detection", "fuzzing", "firing_density", "negatives_verified")
    unstructured = {
        "latents": {str(r["feature"]): {k: r.get(k) for k in kept} for r in rows},
        "moexbench": {"features": about, "metrics": m, "deviations": record["provenance"].get("deviations", []),
                      "by_decile": {k: v for k, v in ai.items() if k.endswith("_by_decile")},
                      "provenance": _provenance(record)}}
    metrics = {"autointerp": {"autointerp_score": m["detection"], "autointerp_std_dev": std}}
    return _envelope("autointerp", eval_config, metrics, [], unstructured, ids, *_from_result(record, variant),
                     record["provenance"].get("git_sha", "unknown"))


def own_doc(record: dict, rows: list[dict], ids: dict, about: dict, variant: str | None) -> dict:
    """A task SAEBench has no eval type for, in its envelope under our own eval_type_id; the result's
    per-item rows (chess: the best feature per board-state property) are its details."""
    task = record["task"]
    config = {**record["config"], "moexbench_note": f"moexbench's own eval type: SAEBench has none for the "
                                                    f"{task} task's metrics (docs/{task}.md defines them)"}
    unstructured = {"moexbench": {"features": about, "deviations": record["provenance"].get("deviations", []),
                                  "details": record.get("details", {}), "provenance": _provenance(record)}}
    return _envelope(f"moexbench_{task}", config, {task: record["metrics"]}, rows, unstructured, ids,
                     *_from_result(record, variant), record["provenance"].get("git_sha", "unknown"))


def check_finite(metrics: dict, where: str) -> None:
    """SAEBench's metrics are numbers: a NaN or infinity (KL with ablation 0: a site that does not change
    the output) stops the export, naming it."""
    for category, values in metrics.items():
        for name, value in values.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise BenchError(f"{where}: {category}.{name} is {value}, not a finite number; nothing was written "
                                 f"(check that the model's site at this layer affects its output)")


def json_safe(value):
    """JSON has no NaN: a non-finite number outside the metrics (a detail, a record) is written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def _model_name(record: dict, about: dict) -> str:
    """The model whose activations are read (an SAE's base model), as SAEBench's model_name."""
    return f"moexbench:{record['task']}-{record['preset']}/{about['base_model']}"


def _envelope(eval_type: str, config: dict, metrics: dict, details: list, unstructured: dict, ids: dict,
              eval_id: str, millis: int, sha: str) -> dict:
    return {"eval_type_id": eval_type, "eval_config": config, "eval_id": eval_id, "datetime_epoch_millis": millis,
            "eval_result_metrics": metrics, "eval_result_details": details,
            # Not SAEBench's commit: the numbers come from moexbench, at this commit.
            "sae_bench_commit_hash": f"moexbench@{sha}", **ids, "eval_result_unstructured": unstructured}


def _from_result(record: dict, variant: str | None) -> tuple[str, int]:
    """An eval_id that stays the same for the same bench run (exporting twice gives the same file), and
    that run's time."""
    created = record["provenance"].get("created", "1970-01-01T00:00:00+00:00")
    key = f"moexbench/{record['task']}/{record['preset']}/{variant or ''}/{record['model']}/{created}"
    millis = int(datetime.datetime.fromisoformat(created).timestamp() * 1000)
    return str(uuid.uuid5(uuid.NAMESPACE_URL, key)), millis


def _provenance(record: dict) -> dict:
    keep = ("git_sha", "created", "checkpoint", "trained", "feature_kind", "features_from", "versions", "seed")
    return {"result_file": Path(record["_path"]).name,
            **{k: record["provenance"][k] for k in keep if k in record["provenance"]}}
