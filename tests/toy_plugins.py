"""A task and a model that live only in the tests: adding either is one class here and one registry
line (tests/test_plugins.py adds the lines), nothing else in the harness changes."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from adapters.dense import DenseAdapter
from core.task import Task
from core.training_data import TrainingData
from models.config import GPTConfig, TrainConfig


@dataclass(frozen=True)
class ToyConfig:
    layer: int = 0


class ToyTask(Task):
    """Predict the next of a repeating 0..7 count; the metric is how many features fire per token."""
    name = "toy"
    Config = ToyConfig
    presets = ("tiny",)

    @staticmethod
    def dense_config(preset: str) -> GPTConfig:
        return GPTConfig(vocab_size=8, n_ctx=16, d_model=16, n_layers=1, n_heads=2, d_mlp=32)

    @staticmethod
    def train_config(preset: str, seed: int) -> TrainConfig:
        return TrainConfig(steps=6, batch_size=4, lr=1e-2, min_lr=1e-3, warmup_steps=1, eval_every=3, seed=seed)

    @staticmethod
    def training_data(preset: str, seed: int) -> TrainingData:
        counting = torch.arange(16).remainder(8).repeat(4, 1)
        return TrainingData(lambda step: counting, counting, {"data": "counting 0..7"})

    @staticmethod
    def evaluate(adapter, random_adapter, config: ToyConfig, preset: str, seed: int) -> dict:
        tokens = torch.arange(16).remainder(8)[None]
        firing = (adapter.features(tokens, config.layer) > 0).float().sum(-1).mean().item()
        return {"metrics": {"features_firing": firing}, "details": {}, "deviations": [], "per_item": []}


class ToyReluAdapter(DenseAdapter):
    feature_kind = "toy ReLU neurons"

    @classmethod
    def model_config(cls, dense: GPTConfig) -> GPTConfig:
        return dataclasses.replace(dense, mlp="dense", act_fn="relu")
