"""The task contract: what the harness calls on a task. A task is one folder under tasks/ with a
class deriving from Task, and one line in bench/registry.py's TASKS.

Two kinds of task:

- over trained models (chess, language): the harness trains or loads the model with the task's
  `dense_config`, `train_config` and `training_data`, wraps it in the model's adapter, and calls
  `evaluate(adapter, random_adapter, config, preset, seed)`;
- building its own toy models (superposition): `builds_own_models = True`, and the harness calls
  `run(adapter_cls, config, preset, seed, device)` with the adapter's class, whose settings the task
  turns into its toys.

Either returns {"metrics": {name: number}, "details": {...}, "deviations": [...], "per_item": [...]}.
Metrics are declared in tasks/<task>/metric_defs.py. Every other hook has a default that does nothing.
All hooks are static: a task holds no state between calls.
"""

from __future__ import annotations

from pathlib import Path


class Task:
    name: str = ""
    Config: type = object          # frozen dataclass of the KEY=VALUE settings
    presets: tuple[str, ...] = ()
    builds_own_models: bool = False

    # --- a task over trained models --------------------------------------------------------------

    @staticmethod
    def dense_config(preset: str):
        """The dense model's GPTConfig at a preset; adapters derive their own shape from it."""
        raise NotImplementedError

    @staticmethod
    def train_config(preset: str, seed: int):
        raise NotImplementedError

    @staticmethod
    def training_data(preset: str, seed: int):
        """A TrainingData: the batch for every step, validation tokens, what checkpoints record."""
        raise NotImplementedError

    @staticmethod
    def evaluate(adapter, random_adapter, config, preset: str, seed: int) -> dict:
        raise NotImplementedError

    @staticmethod
    def prepare(config, preset: str) -> None:
        """Called before the model is loaded (and again by each run: the work starts once): may start,
        in the background, work `evaluate` will need that does not need the model (chess: the position
        labels), so the two overlap."""

    # --- a task that builds its own models -------------------------------------------------------

    @staticmethod
    def run(adapter_cls, config, preset: str, seed: int, device: str) -> dict:
        """{"metrics", "details", "deviations", "per_item", "feature_kind"}, and optionally "on_written":
        a function the harness calls once the result is written (to drop resume state, say)."""
        raise NotImplementedError

    # --- optional hooks ------------------------------------------------------------------------

    @staticmethod
    def token_format(preset: str) -> str | None:
        """The preset's token format, checked against a checkpoint's before loading it; None: one format."""
        return None

    @staticmethod
    def own_data() -> Path | None:
        """The folder of the user's own data that the task reads instead of its committed data (named
        by an environment variable), or None. Then results go to a folder of their own and nothing is
        trained into the committed checkpoints (core/own_data.py)."""
        return None

    @staticmethod
    def untagged_format(preset: str) -> str | None:
        """The token format of a checkpoint that records none (trained before the field existed)."""
        return None

    @staticmethod
    def format_mismatch_fix(preset: str, stem: Path) -> str:
        """What to do about the checkpoint `stem` (path without suffix), trained on other tokens than
        `preset` reads now. Its files are named by the preset, so no other preset reads them."""
        return (f"delete {stem.name}.json and {stem.name}.safetensors in {stem.parent} to train it again on "
                f"these tokens, or score it with the tokens it was trained on")

    @classmethod
    def validation_tokens(cls, preset: str, seed: int):
        """The held-out tokens val_loss and the fidelity metrics read: (rows, n_ctx). A task that can
        build them without its whole training stream overrides this (chess)."""
        return cls.training_data(preset, seed).val_tokens

    @staticmethod
    def eval_callback(preset: str):
        """fn(model, step) -> dict added to the training history at each validation step, or None."""
        return None

    @staticmethod
    def after_training(model_name: str, preset: str, seed: int, meta: dict) -> None:
        """Called once a checkpoint is written (the chess task draws its training curve)."""

    @staticmethod
    def result_variant(config, baseline=None) -> str | None:
        """A results sub-folder for settings that make another experiment; None: the main folder.
        `baseline`: the config of the model's default run (the task's defaults plus the model's own)."""
        return None

    @staticmethod
    def figures(preset: str, variant: str | None = None) -> list:
        """Figures or pages drawn from the results files alone; returns their paths."""
        return []
