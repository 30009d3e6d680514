"""The language task: train a language model on the embedded corpus, then, for any adapter, its
perplexity and loss recovered with the features spliced in (docs/language.md section 3) and auto-
interp of its features (section 4). The task never asks which model it is scoring."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import torch

from core.adapter import FeatureAdapter
from core.task import Task
from core.training_data import TrainingData
from models.config import GPTConfig, TrainConfig
from tasks.language.config import LanguageConfig
from tasks.language.presets import PRESETS

# Every place our numbers may differ from the references (docs/language.md section 6).
EMBEDDED_TEXT = ("text: the embedded corpus of Debian-packaged English (data/language/CARD.md), not FineWeb / "
                 "OpenWebText; perplexities are on its held-out split, not the paper's evaluation sets")
DEVIATIONS = [
    "cross-entropy over every predicted position; the document separator is predicted like any token",
    "a window activates a feature when the feature's maximum in it is above zero; negatives are windows "
    "with no positive activation (verified, not assumed)",
    "lexical backend: explanations are single tokens (case-folded, whitespace-stripped) carrying half "
    "the activation mass, at most 10; detection = any listed token present, fuzzing = every "
    "highlighted token listed",
    "a feature is skipped, and counted by reason, with fewer than min_activating activating windows or "
    "fewer than n_negative verified negative windows (most dense GELU neurons: they fire a little almost "
    "everywhere); the skipped features' firing density is in firing_density_sampled",
    "fuzzing: non-activating windows get ceil(mean) of the activating windows' highlight counts",
    "per-decile accuracies are means over features, without confidence intervals; the tiny preset uses "
    "10 explanation, 10 + 10 test examples per feature",
    "only with negatives=weakest (config; default verified): a feature without 50 verified negative "
    "windows takes its 50 weakest windows as negatives, counted in autointerp_weakest_negative_features",
    "activations for auto-interp are read on consecutive 32-token windows of held-out sequences of the "
    "preset's context, each feature's window maxima cached to disk",
]


# The floor's numbers kept among the metrics, as <name>_random_init; the rest are in details.random_init.
FLOOR_METRICS = ("detection", "fuzzing", "detection_n_features")


def _deviations() -> list[str]:
    """DEVIATIONS, led by which text was read: the embedded corpus, or the folder MOEXBENCH_LANGUAGE_DATA names."""
    folder = LanguageTask.own_data()
    if folder is None:
        return [EMBEDDED_TEXT, *DEVIATIONS]
    return [f"text: the corpus in {folder.resolve()} (MOEXBENCH_LANGUAGE_DATA), not the embedded one; perplexities "
            f"are on its held-out split", *DEVIATIONS]


def _format_field(preset: str) -> dict:
    """The tokenizer in a training fingerprint, only when it is not the embedded one: absent means
    that one, so a training state saved before the field existed still resumes."""
    fmt = LanguageTask.token_format(preset)
    return {} if fmt == LanguageTask.untagged_format(preset) else {"format": fmt}


def _tokenizer(preset: str):
    from tasks.language.tokenizer import load_tokenizer

    return load_tokenizer(PRESETS[preset].tokenizer)


def _ids(split: str, preset: str) -> np.ndarray:
    from tasks.language.corpus import read_split
    from tasks.language.token_stream import split_ids

    return split_ids(read_split(split), _tokenizer(preset))


def _heldout(preset: str) -> tuple[np.ndarray, np.ndarray]:
    from tasks.language.token_stream import heldout_windows

    p = PRESETS[preset]
    return heldout_windows(_ids("heldout", preset), p.n_ctx, p.n_val_seqs, p.n_interp_seqs)


class LanguageTask(Task):
    name = "language"
    Config = LanguageConfig
    presets = tuple(PRESETS)

    @staticmethod
    def dense_config(preset: str) -> GPTConfig:
        return GPTConfig(**PRESETS[preset].model_shape(_tokenizer(preset).vocab_size))

    @staticmethod
    def train_config(preset: str, seed: int) -> TrainConfig:
        return dataclasses.replace(PRESETS[preset].train, seed=seed)

    @staticmethod
    def token_format(preset: str) -> str:
        """The tokenizer's name and digest: a corpus folder of your own may hold another bpe-4096."""
        return _tokenizer(preset).token_format

    @staticmethod
    def format_mismatch_fix(preset: str, stem: Path) -> str:
        return ("the bpe-4096.json in MOEXBENCH_LANGUAGE_DATA's folder differs from the tokenizer the checkpoint "
                "was trained with: copy data/language/bpe-4096.json there (python -m tasks.language.own_corpus does "
                "by default), or train checkpoints for your tokenizer into their own folder "
                "(MOEXBENCH_CHECKPOINTS=<folder>)")

    @staticmethod
    def own_data() -> Path | None:
        from tasks.language.corpus import DATA_DIR, EMBEDDED_DIR

        return None if Path(DATA_DIR).resolve() == EMBEDDED_DIR.resolve() else Path(DATA_DIR)

    @staticmethod
    def untagged_format(preset: str) -> str:
        """Checkpoints that record no format were all trained with the embedded corpus's tokenizer."""
        from tasks.language.corpus import EMBEDDED_DIR
        from tasks.language.tokenizer import load_tokenizer

        return load_tokenizer(PRESETS[preset].tokenizer, EMBEDDED_DIR).token_format

    @staticmethod
    def training_data(preset: str, seed: int) -> TrainingData:
        from tasks.language.token_stream import TextStream

        p = PRESETS[preset]
        train_ids = _ids("train", preset)
        stream = TextStream(train_ids, p.n_ctx, seed)
        val, _ = _heldout(preset)
        digest = hashlib.sha256(train_ids.tobytes()).hexdigest()
        return TrainingData(lambda step: stream.batch(step, p.train.batch_size), torch.from_numpy(val),
                            {"data": f"language train split, {p.tokenizer} ids sha256 {digest}",
                             "n_val_seqs": p.n_val_seqs, **_format_field(preset)})

    @staticmethod
    def evaluate(adapter: FeatureAdapter, random_adapter: FeatureAdapter | None, config: LanguageConfig,
                 preset: str, seed: int) -> dict:
        from core.fidelity import fidelity, splice_details
        from core.paths import CACHE
        from tasks.language.autointerp.run import run_autointerp

        p = PRESETS[preset]
        val, interp = _heldout(preset)
        val_tokens = torch.from_numpy(val)
        metrics = fidelity(adapter, val_tokens, config.layer, config.site, config.batch_size)
        metrics["val_loss"] = metrics["ce_clean"]  # the same rows' clean loss, measured once
        model_metrics, model_details = adapter.model_metrics(val_tokens[:config.batch_size], config.layer)
        metrics.update(model_metrics)

        with contextlib.ExitStack() as stack:
            backend, token_strings = _backend(config, stack), _tokenizer(preset).token_strings

            def autointerp(scored: FeatureAdapter, require_scored: bool = True):
                """(features at the site, auto-interp of a sample of them): one protocol for the model and its floor."""
                def feature_fn(tokens: torch.Tensor) -> torch.Tensor:
                    return scored.features(tokens, config.layer, config.site)

                n = feature_fn(torch.from_numpy(interp[:1])).shape[-1]
                return n, run_autointerp(feature_fn, n, interp, token_strings, backend,
                                         dataclasses.replace(p.sampling, negatives=config.negatives),
                                         config.n_features or p.n_interp_features, seed, CACHE / "autointerp",
                                         config.batch_size, require_scored)

            n_features, result = autointerp(adapter)
            floor = None
            if random_adapter is not None:
                print(f"random-init floor: the same auto-interp on {adapter.name}'s architecture untrained", flush=True)
                floor = autointerp(random_adapter, require_scored=False)[1]
        metrics.update(result.metrics)
        metrics["n_features"] = n_features
        if floor is not None:
            metrics.update({f"{name}_random_init": floor.metrics[name]
                            for name in FLOOR_METRICS if name in floor.metrics})
        for line in warnings(metrics, adapter.name):
            print(f"warning: {line}")
        details = {"feature_hook": adapter.feature_hook(config.layer, config.site),
                   "feature_kind": adapter.feature_kind, "tokenizer": LanguageTask.token_format(preset),
                   "model": model_details,
                   "splice": splice_details(adapter, config.layer, config.site),
                   "autointerp": result.details,
                   "text": {"val_seqs": len(val), "interp_seqs": len(interp), "n_ctx": p.n_ctx}}
        if floor is not None:  # its every count; the metrics above keep the scores a floor is read as
            details["random_init"] = {"metrics": floor.metrics, **floor.details}
        return {"metrics": metrics, "details": details, "deviations": _deviations(), "per_item": result.records}

    @staticmethod
    def result_variant(config: LanguageConfig, baseline: LanguageConfig | None = None) -> str | None:
        """LLM-backend scores, scores of other features (another layer or site than `baseline`, the
        model's default run) and scores without the random-init floor go to their own folder, e.g.
        results/language/llm_layer.-2/: they never replace the default run's."""
        default = baseline or LanguageConfig()
        parts = ["llm"] if config.backend == "llm" else []
        parts += [f"{name}.{getattr(config, name)}" for name in LanguageConfig.OTHER_FEATURES
                  if getattr(config, name) != getattr(default, name)]
        if not config.random_floor:  # lacking a metric the default run has: never over it
            parts.append("random_floor.False")
        return "_".join(parts) or None

    @staticmethod
    def figures(preset: str, variant: str | None = None) -> list:
        """A browsable HTML page per model, from the per-feature records."""
        from core.results import result_dir
        from tasks.language.feature_pages import render_pages

        return render_pages(result_dir("language", preset, variant))


def warnings(metrics: dict, name: str) -> list[str]:
    """What makes a headline number weak, said when it is printed rather than left in the JSON."""
    said = []
    if metrics.get("mostly_dead"):
        said.append(f"{metrics['dead_fraction']:.0%} of {name}'s features never fire on the validation text; "
                    f"flagged as mostly_dead in the results")
    sampled, scored = metrics.get("autointerp_features_sampled", 0), metrics.get("detection_n_features", 0)
    if sampled and scored < sampled / 2:
        skipped = metrics.get("autointerp_features_skipped", 0)
        said.append(f"auto-interp scored {scored} of the {sampled} features sampled (skipped: "
                    f"{metrics.get('autointerp_skipped_few_activating', 0)} firing in too few windows, "
                    f"{metrics.get('autointerp_skipped_few_negatives', 0)} in too many to find negatives; "
                    f"{sampled - skipped - scored} without parseable answers): detection and fuzzing are "
                    f"means over {scored}")
    floor_scored = metrics.get("detection_n_features_random_init")
    if floor_scored is not None and sampled and floor_scored < sampled / 2:
        said.append(f"the random-init floor scored {floor_scored:.0f} of its {sampled} sampled features "
                    f"(details.random_init says why): " + ("detection and fuzzing have no floor in this result"
                    if not floor_scored else f"detection's and fuzzing's floors are means over {floor_scored:.0f}"))
    ablation_gap = metrics.get("ce_zero_ablation", 0.0) - metrics.get("ce_clean", 0.0)
    own_units = metrics.get("ce_splice") == metrics.get("ce_clean")  # 1 by construction, whatever the ablation
    if "loss_recovered" in metrics and abs(ablation_gap) < 0.01 and not own_units:
        said.append(f"zero-ablating the scored site moves the loss by {ablation_gap:+.4f} nats only, so "
                    f"loss_recovered ({metrics['loss_recovered']:.3f}) divides by almost nothing")
    return said


def _backend(config: LanguageConfig, stack: contextlib.ExitStack):
    """The scorer; a local server it starts is stopped when `stack` closes."""
    if config.backend == "lexical":
        from tasks.language.autointerp.lexical import LexicalBackend

        return LexicalBackend()
    from tasks.language.autointerp.llm_backend import LLMBackend
    from tasks.language.autointerp.llm_client import LLMConfig

    base_url, concurrency, timeout_s = config.llm_base_url, config.llm_concurrency, config.llm_timeout_s
    if base_url == "local":
        from tasks.language.autointerp.local_server import LOCAL_TIMEOUT_S, LocalServer

        base_url = stack.enter_context(LocalServer(threads=torch.get_num_threads())).base_url
        # The local server has one slot on CPU threads: more requests in flight only queue, and a
        # 40-example explanation prompt takes minutes there.
        concurrency, timeout_s = 1, max(timeout_s, LOCAL_TIMEOUT_S)
    return LLMBackend(LLMConfig(base_url=base_url, model=config.llm_model, max_concurrency=concurrency,
                                timeout_s=timeout_s, constrained=config.llm_constrained))
