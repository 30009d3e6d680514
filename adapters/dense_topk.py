"""dense-topk: the dense model with a top-k ReLU MLP (models/topk_mlp.py), trained from scratch with
`dense`'s recipe and data. Its features are the hidden units, at most k active per token.

k is MoE-X's measured L0 at the same task and preset (mean active units per token on the validation
tokens at the scored block, `l0_fidelity` in results/<task>/moex.json), so the two models' active
widths match and the comparison isolates sparse activations from experts and routing. Shapes with no
MoE-X measurement keep d_mlp / 16, about the fraction MoE-X keeps where it was measured.
tests/test_dense_topk.py checks the table against the committed MoE-X results.
"""

from __future__ import annotations

import dataclasses

from adapters.dense import DenseAdapter
from models.config import GPTConfig

# (vocab_size, n_ctx, d_model, n_layers) of a task preset's dense shape -> (k, where it was measured)
MEASURED_K = {
    (1970, 64, 256, 4): (47, "chess cpu: MoE-X l0_fidelity 47.41 (results/chess/moex.json)"),
    (4096, 256, 128, 6): (32, "language cpu: MoE-X l0_fidelity 31.56 (results/language/moex.json)"),
}
DEFAULT_FRACTION = 16  # k = d_mlp // 16 where MoE-X's L0 was not measured


def k_for(dense: GPTConfig) -> int:
    measured = MEASURED_K.get((dense.vocab_size, dense.n_ctx, dense.d_model, dense.n_layers))
    return measured[0] if measured else max(1, dense.d_mlp // DEFAULT_FRACTION)


class DenseTopKAdapter(DenseAdapter):
    act_fn = "relu"

    @property
    def feature_kind(self) -> str:
        return f"dense MLP neurons, top-{dict(self.model.cfg.mlp_options)['k']} of ReLU per token"

    @classmethod
    def model_config(cls, dense: GPTConfig) -> GPTConfig:
        return dataclasses.replace(dense, mlp="topk", act_fn=cls.act_fn, mlp_options=(("k", k_for(dense)),))
