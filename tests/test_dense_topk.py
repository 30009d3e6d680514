"""dense-topk: the top-k ReLU MLP keeps exactly each token's k largest units, its k is MoE-X's committed
L0, and the model trains and scores end to end like any other."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from adapters.dense_topk import MEASURED_K, k_for
from bench import registry
from core.results import load_result, result_path
from models.config import GPTConfig
from models.topk_mlp import TopKMLP, top_k_of

ROOT = Path(__file__).resolve().parents[1]
SHAPE = dict(vocab_size=8, n_ctx=4, d_model=4, n_layers=1, n_heads=1, d_mlp=6)


def test_top_k_keeps_each_rows_k_largest_and_zeroes_the_rest():
    h = torch.tensor([[3.0, 0.0, 5.0, 1.0], [0.5, 4.0, 2.0, 3.0]])
    assert torch.equal(top_k_of(h, 2), torch.tensor([[3.0, 0.0, 5.0, 0.0], [0.0, 4.0, 0.0, 3.0]]))
    assert torch.equal(top_k_of(h, 4), h)


def test_the_mlp_is_relu_then_top_k_and_only_kept_units_get_gradient():
    torch.manual_seed(0)
    mlp = TopKMLP(GPTConfig(**SHAPE, act_fn="relu", mlp="topk", mlp_options=(("k", 2),)))
    x = torch.randn(3, 4, 4)
    seen = {}

    def keep(act, hook):  # returns None: the activation passes on unchanged
        seen["code"] = act.detach()

    mlp.hook_post.add_hook(keep)
    out = mlp(x)
    hidden = torch.relu(x @ mlp.W_in.weight.T + mlp.W_in.bias)
    kept = hidden.topk(2, dim=-1).indices
    expected_code = torch.zeros_like(hidden).scatter(-1, kept, hidden.gather(-1, kept))
    assert torch.allclose(seen["code"], expected_code)
    assert ((seen["code"] != 0).sum(-1) <= 2).all()
    assert torch.allclose(out, expected_code @ mlp.W_out.weight.T + mlp.W_out.bias, atol=1e-6)
    # one token: the 4 units it drops get no gradient; the top-k is a mask, not a soft weighting
    mlp(x[:1, :1]).sum().backward()
    dropped = expected_code[0, 0] == 0
    assert dropped.sum() >= 4 and (mlp.W_in.weight.grad[dropped] == 0).all()
    assert (mlp.W_in.weight.grad[~dropped] != 0).any()


@pytest.mark.parametrize("options,message", [((("k", 7),), "k 7 must be between 1 and the MLP width 6"),
                                             ((("k", 0),), "k 0 must be between 1"),
                                             ((), "needs mlp_options")])
def test_a_k_outside_the_mlp_width_is_refused_in_one_line(options, message):
    with pytest.raises(ValueError, match=message):
        TopKMLP(GPTConfig(**SHAPE, act_fn="relu", mlp="topk", mlp_options=options))


@pytest.mark.parametrize("task_name", ["chess", "language"])
def test_k_is_moex_committed_l0_at_the_cpu_preset(task_name):
    dense = registry.task(task_name).dense_config("cpu")
    key = (dense.vocab_size, dense.n_ctx, dense.d_model, dense.n_layers)
    assert key in MEASURED_K, f"{task_name} cpu's shape changed: re-measure MoE-X's L0 and update MEASURED_K"
    moex = json.loads((ROOT / "results" / task_name / "moex.json").read_text())
    assert k_for(dense) == round(moex["metrics"]["l0_fidelity"])
    assert k_for(registry.task(task_name).dense_config("tiny")) == 128 // 16  # unmeasured: d_mlp / 16


def test_dense_topk_trains_and_scores_end_to_end_at_tiny():
    out = subprocess.run([sys.executable, "-m", "bench", "bench", "--model", "dense-topk", "--task", "chess",
                          "--preset", "tiny", "--threads", "1", "probe_games=20", "legal_move_games=5"],
                         cwd=ROOT, capture_output=True, text=True, timeout=900, env=dict(os.environ))
    assert out.returncode == 0, out.stderr[-2000:]
    record = load_result(result_path("chess", "dense-topk", "tiny", 0))
    assert record["metrics"]["n_features"] == 128
    assert 0 < record["metrics"]["l0_fidelity"] <= 8  # never more than k units per token
    assert "top-8 of ReLU" in record["provenance"]["feature_kind"]


def test_dense_topk_has_no_toy_counterpart_and_says_so():
    from core.errors import BenchError
    from tasks.superposition.task import toy_form

    with pytest.raises(BenchError, match="dense-topk \\(topk MLP\\) has no toy counterpart"):
        toy_form(registry.model_adapter("dense-topk"))
