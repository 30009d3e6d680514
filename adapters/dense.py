"""Dense GPT-2-style baseline: features are the MLP hidden units (GELU; `dense-relu` for ReLU)."""

from __future__ import annotations

import dataclasses

from core.adapter import FeatureAdapter
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


class DenseContinuedAdapter(DenseAdapter):
    """The fair comparison for upcycling (MoE-X Table 4): the dense checkpoint trained again for
    the same number of steps as `moex-upcycled`."""
    feature_kind = "dense MLP neurons (continued training)"
    initialise_from = "dense"

    @staticmethod
    def initialise(model, source) -> None:
        model.load_state_dict(source.state_dict())
