"""Dense GPT-2-style baseline: features are the MLP hidden units (GELU; `dense-relu` for ReLU)."""

from __future__ import annotations

import dataclasses

from bench.adapter import FeatureAdapter
from models.config import GPTConfig


class DenseAdapter(FeatureAdapter):
    feature_kind = "dense MLP neurons"
    act_fn = "gelu"

    @classmethod
    def model_config(cls, dense: GPTConfig) -> GPTConfig:
        return dataclasses.replace(dense, mlp="dense", act_fn=cls.act_fn)


class DenseReluAdapter(DenseAdapter):
    feature_kind = "dense MLP neurons (ReLU)"
    act_fn = "relu"
