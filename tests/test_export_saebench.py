"""`moexbench export --format saebench` at the tiny preset: every exported file validates against
SAEBench's own pydantic output classes (sae-bench 0.6.0, installed with --no-deps by the Makefile:
its eval_output modules need only pydantic), the core metrics are right on hand-worked cases and agree
with SAELens's run_evals on an SAE, and bad input is one line, exit status 2, nothing written."""

import json
import os
import shutil
import statistics
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
import torch

from bench import registry
from bench.core_metrics import core_metrics, kl_per_position, mean_max_cosine
from bench.model_store import build_random
from core.results import load_result
from bench.sae_store import attach_features

ROOT = Path(__file__).resolve().parents[1]
LANGUAGE = [("dense", ["negatives=weakest"]), ("moex", ["negatives=weakest", "n_features=256"]),
            ("dense+sae", ["negatives=weakest", "n_features=256"])]


def _cli(*args, results: Path):
    env = dict(os.environ, MOEXBENCH_RESULTS=str(results), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=900, env=env)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Tiny language results for a dense model, MoE-X and an SAE, and a tiny chess result, in a results
    folder of this module's own (checkpoints are the session's, shared with the other tests)."""
    root = tmp_path_factory.mktemp("export-results")
    for model, args in LANGUAGE:
        out = _cli("bench", "--task", "language", "--preset", "tiny", "--threads", "1", "--model", model, *args,
                   results=root)
        assert out.returncode == 0, out.stderr[-2000:]
    out = _cli("bench", "--task", "chess", "--preset", "tiny", "--threads", "1", "--model", "dense",
               "probe_games=20", "legal_move_games=5", results=root)
    assert out.returncode == 0, out.stderr[-2000:]
    return root


@pytest.fixture(scope="module")
def exported(results):
    for task in ("language", "chess"):
        out = _cli("export", "--format", "saebench", "--task", task, "--preset", "tiny", "--threads", "1",
                   results=results)
        assert out.returncode == 0, out.stderr[-2000:]
        said = out.stdout.strip().splitlines()   # what it found, one line per model, then where it wrote
        assert said[-1].startswith("wrote ") and any("ce_loss_score" in line and "l0" in line for line in said)
    return results


def _own_output_class():
    """The SAEBench envelope with free-form metric categories: our own eval types have no class of theirs."""
    from pydantic import Field
    from pydantic.dataclasses import dataclass
    from sae_bench.evals.base_eval_output import BaseEvalConfig, BaseEvalOutput, BaseMetricCategories, BaseResultDetail

    @dataclass
    class OwnEvalOutput(BaseEvalOutput[BaseEvalConfig, BaseMetricCategories, BaseResultDetail]):
        eval_config: dict[str, Any]
        eval_id: str
        datetime_epoch_millis: int
        eval_result_metrics: dict[str, dict[str, float]]
        eval_result_details: list[dict[str, Any]] = Field(default_factory=list)

    return OwnEvalOutput


def _validate(path: Path) -> dict:
    """The file through SAEBench's output class; nothing it holds is dropped or renamed on the way."""
    # sae_bench/__init__.py is empty and evals/ has no __init__.py, so these imports load pydantic and
    # the schema modules only (sae_bench/evals/core/main.py would need tabulate, openai, ..., not installed).
    from sae_bench.evals.autointerp.eval_output import AutoInterpEvalOutput
    from sae_bench.evals.core.eval_output import CoreEvalOutput

    doc = json.loads(path.read_text())
    cls = {"core": CoreEvalOutput, "autointerp": AutoInterpEvalOutput}.get(doc["eval_type_id"], _own_output_class())
    back = asdict(cls(**doc))
    assert set(back) == set(doc)
    assert back["eval_result_metrics"] == doc["eval_result_metrics"]
    return doc


def test_every_exported_file_validates_and_carries_the_results(exported):
    folder = exported / "language" / "tiny" / "saebench"
    files = sorted(folder.rglob("*.json"))
    stems = ["dense", "dense+sae", "moex"]
    assert [p.relative_to(folder).as_posix() for p in files] == \
        sorted(f"{kind}/moexbench_language_tiny_{s}_eval_results.json" for kind in ("autointerp", "core")
               for s in stems)
    for stem in stems:
        m = load_result(exported / "language" / "tiny" / f"{stem}.json")["metrics"]
        ai = _validate(folder / "autointerp" / f"moexbench_language_tiny_{stem}_eval_results.json")
        assert ai["eval_type_id"] == "autointerp" and ai["sae_lens_id"] == stem
        assert ai["eval_result_metrics"]["autointerp"]["autointerp_score"] == m["detection"]
        # the spread of the per-feature scores in the result's own records, n - 1 as SAEBench's torch.std
        per_feature = [json.loads(line)["detection"] for line in
                       (exported / "language" / "tiny" / f"{stem}.jsonl").read_text().splitlines() if line.strip()]
        per_feature = [d for d in per_feature if d is not None]
        assert len(per_feature) > 1
        assert ai["eval_result_metrics"]["autointerp"]["autointerp_std_dev"] == \
            pytest.approx(statistics.stdev(per_feature), abs=1e-12)
        protocol = ai["eval_config"]["moexbench_protocol"]
        assert "balanced accuracy over 10 activating + 10" in protocol and "32-token windows" in protocol
        assert "backend lexical" in protocol and ai["eval_config"]["moexbench_backend"] == "lexical"
        assert len(ai["eval_result_unstructured"]["latents"]) == m["autointerp_features_sampled"] - \
            m["autointerp_features_skipped"]
        core = _validate(folder / "core" / f"moexbench_language_tiny_{stem}_eval_results.json")
        c = core["eval_result_metrics"]
        assert c["model_performance_preservation"]["ce_loss_score"] == pytest.approx(m["loss_recovered"], abs=1e-5)
        assert c["model_performance_preservation"]["ce_loss_without_sae"] == pytest.approx(m["ce_clean"], abs=1e-5)
        assert c["reconstruction_quality"]["explained_variance"] == pytest.approx(m["explained_variance"], abs=1e-6)
        assert c["token_stats"]["total_tokens_eval_sparsity_variance"] == 16 * 64
        assert len(core["eval_result_unstructured"]["feature_density"]) == m["n_features"]
        if stem == "dense+sae":  # a dictionary: loses something, reconstructs imperfectly, sparse
            assert core["sae_cfg_dict"]["architecture"] == "topk" and core["sae_lens_version"]
            assert c["model_behavior_preservation"]["kl_div_with_sae"] > 0
            assert c["reconstruction_quality"]["mse"] > 0 and c["reconstruction_quality"]["cossim"] < 1
            assert c["sparsity"]["l0"] <= 32  # topk, k = 32
            assert 0 < c["misc_metrics"]["average_max_decoder_cosine_sim"] < 1
        else:  # the model's own units: the splice is the activation itself
            assert core["sae_cfg_dict"]["architecture"] == "model_units" and core["sae_lens_version"] is None
            # KL of the identity splice is float-order noise (MoE-X's hooked path sums its experts in
            # another order than the fused one), far below any real splice's. Its score is not checked
            # against 1: a tiny model's ablation KL is itself ~1e-6, so the ratio is noise over noise.
            kl = c["model_behavior_preservation"]
            assert abs(kl["kl_div_with_sae"]) < 1e-7 < kl["kl_div_with_ablation"]
            assert kl["kl_div_score"] == pytest.approx(
                (kl["kl_div_with_ablation"] - kl["kl_div_with_sae"]) / kl["kl_div_with_ablation"], abs=1e-9)
            assert c["reconstruction_quality"]["mse"] == pytest.approx(0.0, abs=1e-10)
            assert c["shrinkage"]["l2_ratio"] == pytest.approx(1.0, abs=1e-6)
            assert c["misc_metrics"]["average_max_encoder_cosine_sim"] == 0.0


def test_chess_metrics_go_in_the_envelope_under_our_own_eval_type(exported):
    folder = exported / "chess" / "tiny" / "saebench"
    own = _validate(folder / "moexbench_chess" / "moexbench_chess_tiny_dense_eval_results.json")
    result = load_result(exported / "chess" / "tiny" / "dense.json")
    assert own["eval_type_id"] == "moexbench_chess" and "SAEBench has none" in own["eval_config"]["moexbench_note"]
    assert own["eval_result_metrics"] == {"chess": result["metrics"]}
    assert own["eval_result_details"][0].keys() >= {"group", "bsp", "best_f1"}
    core = _validate(folder / "core" / "moexbench_chess_tiny_dense_eval_results.json")
    assert core["eval_result_metrics"]["model_performance_preservation"]["ce_loss_without_sae"] == \
        pytest.approx(result["metrics"]["ce_clean"], abs=1e-4)


# --- the core metrics on hand-worked cases (a random tiny model: no training needed) ---------------

@pytest.fixture(scope="module")
def random_dense():
    task = registry.task("language")
    cls = registry.model_adapter("dense")
    adapter = cls(build_random(cls, task, "tiny", 0).eval())
    tokens = torch.randint(0, adapter.model.cfg.vocab_size, (6, 16), generator=torch.Generator().manual_seed(0))
    site = adapter.activations(tokens, "blocks.1.mlp.hook_post").double()
    return adapter, tokens, site


def _with(adapter, **methods):
    other = type(adapter)(adapter.model)
    for name, fn in methods.items():
        setattr(other, name, fn)
    return other


def test_identity_splice_is_perfect(random_dense):
    adapter, tokens, site = random_dense
    c = core_metrics(adapter, tokens, -3, "mlp", batch_size=4)["metrics"]
    assert c["model_behavior_preservation"]["kl_div_with_sae"] == 0.0
    assert c["model_behavior_preservation"]["kl_div_with_ablation"] > 0
    assert c["model_behavior_preservation"]["kl_div_score"] == 1.0
    assert c["model_performance_preservation"]["ce_loss_score"] == 1.0
    assert c["reconstruction_quality"]["mse"] == 0.0
    assert c["reconstruction_quality"]["cossim"] == pytest.approx(1.0, abs=1e-12)
    assert c["shrinkage"]["l2_ratio"] == pytest.approx(1.0, abs=1e-12)
    assert c["shrinkage"]["relative_reconstruction_bias"] == pytest.approx(1.0, abs=1e-12)
    assert c["shrinkage"]["l2_norm_in"] == pytest.approx(site.norm(dim=-1).mean().item(), rel=1e-9)


def test_zero_reconstruction_scores_zero(random_dense):
    adapter, tokens, site = random_dense
    c = core_metrics(_with(adapter, reconstruct=torch.zeros_like), tokens, -3, "mlp", batch_size=4)["metrics"]
    kl = c["model_behavior_preservation"]
    assert kl["kl_div_with_sae"] == kl["kl_div_with_ablation"] > 0 and kl["kl_div_score"] == 0.0
    assert c["model_performance_preservation"]["ce_loss_score"] == 0.0
    assert c["reconstruction_quality"]["mse"] == pytest.approx(site.pow(2).sum(-1).mean().item(), rel=1e-9)
    assert c["reconstruction_quality"]["cossim"] == 0.0  # our rule for an all-zero reconstruction
    assert c["shrinkage"]["l2_ratio"] == 0.0 and c["shrinkage"]["l2_norm_out"] == 0.0


def test_half_reconstruction_shrinks_by_half(random_dense):
    adapter, tokens, site = random_dense
    c = core_metrics(_with(adapter, reconstruct=lambda x: 0.5 * x), tokens, -3, "mlp", batch_size=4)["metrics"]
    assert c["reconstruction_quality"]["mse"] == pytest.approx(0.25 * site.pow(2).sum(-1).mean().item(), rel=1e-6)
    assert c["reconstruction_quality"]["cossim"] == pytest.approx(1.0, abs=1e-6)
    assert c["shrinkage"]["l2_ratio"] == pytest.approx(0.5, abs=1e-6)
    assert c["shrinkage"]["relative_reconstruction_bias"] == pytest.approx(0.5, abs=1e-6)  # |x/2|^2 / (x . x/2)
    kl, ce = c["model_behavior_preservation"], c["model_performance_preservation"]
    assert 0 < kl["kl_div_score"] < 1  # SAELens's normalisations, on a case where neither end is hit
    assert kl["kl_div_score"] == pytest.approx((kl["kl_div_with_ablation"] - kl["kl_div_with_sae"]) /
                                               kl["kl_div_with_ablation"], rel=1e-12)
    assert ce["ce_loss_score"] == pytest.approx((ce["ce_loss_with_ablation"] - ce["ce_loss_with_sae"]) /
                                                (ce["ce_loss_with_ablation"] - ce["ce_loss_without_sae"]), rel=1e-12)


def test_sparsity_and_frequency_on_known_features(random_dense):
    adapter, tokens, _ = random_dense

    def features(batch, layer, site):  # f0 fires everywhere (1.0), f1 at position 0 only (-2.0), f2 never
        out = torch.zeros(batch.shape[0], batch.shape[1], 3)
        out[:, :, 0], out[:, 0, 1] = 1.0, -2.0
        return out

    got = core_metrics(_with(adapter, features=features), tokens, -3, "mlp", batch_size=4)
    c, T = got["metrics"], tokens.shape[1]
    assert c["sparsity"]["l0"] == pytest.approx(1 + 1 / T) and c["sparsity"]["l1"] == pytest.approx(1 + 2 / T)
    assert got["feature_density"] == pytest.approx([1.0, 1 / T, 0.0])
    assert got["consistent_activation_heuristic"] == [T, 1.0, None]
    misc = c["misc_metrics"]
    assert misc["frac_alive"] == pytest.approx(2 / 3)
    assert misc["freq_over_1_percent"] == pytest.approx(2 / 3)  # 1/16 > 1%
    assert misc["freq_over_10_percent"] == pytest.approx(1 / 3)
    assert misc["normalized_freq_over_1_percent"] == pytest.approx(1.0)
    assert misc["normalized_freq_over_10_percent"] == pytest.approx(1 / (1 + 1 / T))


def test_kl_and_max_cosine_by_hand():
    clean, new = torch.tensor([[[0.0, torch.log(torch.tensor(3.0))]]]), torch.zeros(1, 1, 2)
    expected = 0.25 * torch.log(torch.tensor(0.5)) + 0.75 * torch.log(torch.tensor(1.5))  # p=(1/4, 3/4), q=(1/2, 1/2)
    assert kl_per_position(clean, new).item() == pytest.approx(expected.item(), abs=1e-6)
    assert kl_per_position(clean, clean).item() == 0.0
    assert mean_max_cosine(torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0]])) == pytest.approx(2 ** -0.5)
    assert mean_max_cosine(torch.eye(5), chunk=2) == 0.0 and mean_max_cosine(None) == 0.0


def test_core_metrics_agree_with_saelens_run_evals(results):
    """On the chess tiny model's SAE: the language tiny model hardly uses its MLP after 30 steps (KL with
    ablation ~1e-5), where float32 rounding in SAELens's means alone moves the scores by 1e-3."""
    from datasets import Dataset
    from sae_lens import ActivationsStore, run_evals
    from sae_lens.evals import EvalConfig
    from sae_lens.training.activation_scaler import ActivationScaler

    from bench.model_store import load_or_train
    from tasks.chess.config import ChessConfig

    task = registry.task("chess")
    adapter, _, _ = load_or_train(registry.model_adapter("dense+sae"), task, "tiny", 0, "cpu", train_if_missing=False)
    attach_features(adapter, task, "tiny", 0, ChessConfig(), "cpu", role="trained")
    rows = task.training_data("tiny", 0).val_tokens[:12]
    store = ActivationsStore(model=adapter.model, dataset=Dataset.from_dict({"tokens": rows.tolist()}),
                             streaming=False, hook_name=adapter.sae_hook, hook_head_index=None,
                             context_size=rows.shape[1], d_in=adapter.model.cfg.d_mlp, n_batches_in_buffer=2,
                             total_training_tokens=len(rows), store_batch_size_prompts=4,
                             train_batch_size_tokens=1024, prepend_bos=False, normalize_activations="none",
                             device=torch.device("cpu"), dtype="float32")
    evals = EvalConfig(batch_size_prompts=4, n_eval_reconstruction_batches=3, n_eval_sparsity_variance_batches=3,
                       compute_kl=True, compute_ce_loss=True, compute_l2_norms=True, compute_sparsity_metrics=True,
                       compute_variance_metrics=True, compute_featurewise_density_statistics=True)
    theirs, their_features = run_evals(adapter.sae, store, adapter.model, ActivationScaler(), evals,
                                       exclude_special_tokens=False)
    ours = core_metrics(adapter, rows, -3, "mlp", batch_size=4)
    assert 0.5 < theirs["model_behavior_preservation"]["kl_div_score"] < 0.99  # a case where the score says something
    compared = 0
    for category, values in theirs.items():
        for name, value in values.items():
            assert ours["metrics"][category][name] == pytest.approx(value, rel=1e-4, abs=1e-7), f"{category}.{name}"
            compared += 1
    assert compared == 19  # all run_evals gives: KL 3, CE 4, reconstruction 4, shrinkage 4, sparsity 2, tokens 2
    assert ours["feature_density"] == pytest.approx(their_features["feature_density"], abs=1e-6)


# --- bad input: one line, exit status 2, nothing written -------------------------------------------

def _copy(results: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "results"
    shutil.copytree(results / "language" / "tiny", copy / "language" / "tiny",
                    ignore=shutil.ignore_patterns("saebench"))
    return copy


def _fails(out, *fragments) -> str:
    assert out.returncode == 2, out.stderr[-2000:]
    line = out.stderr.strip()
    assert "\n" not in line and line.startswith("error: "), line
    for fragment in fragments:
        assert fragment in line, line
    return line


def test_unknown_format_and_task_and_missing_results_are_one_line(results, tmp_path):
    _fails(_cli("export", "--format", "saebenchh", results=results), "export format 'saebenchh' unknown",
           "choose one of saebench")
    _fails(_cli("export", "--format", "saebench", "--task", "superposition", "--preset", "tiny", results=results),
           "no SAEBench export")
    _fails(_cli("export", "--format", "saebench", "--task", "language", "--preset", "paper", results=results),
           "no results in", "make bench TASK=language PRESET=paper")
    assert not (results / "language" / "paper").exists()


def test_a_damaged_result_writes_nothing(results, tmp_path):
    copy = _copy(results, tmp_path)
    record = json.loads((copy / "language" / "tiny" / "moex.json").read_text())
    record["metrics"]["detection"] = "high"
    (copy / "language" / "tiny" / "moex.json").write_text(json.dumps(record))
    _fails(_cli("export", "--format", "saebench", "--task", "language", "--preset", "tiny", results=copy),
           "moex.json: metric 'detection'", "rerun the bench")
    assert not (copy / "language" / "tiny" / "saebench").exists()


def test_a_result_from_other_weights_is_refused_and_nothing_is_written(results, tmp_path):
    copy = _copy(results, tmp_path)
    path = copy / "language" / "tiny" / "moex.json"  # the last model exported: the others are computed first
    record = json.loads(path.read_text())
    record["metrics"]["ce_clean"] += 0.5
    path.write_text(json.dumps(record))
    out_dir = tmp_path / "out"
    _fails(_cli("export", "--format", "saebench", "--task", "language", "--preset", "tiny", "--threads", "1",
                "--out", str(out_dir), results=copy), "moex.json: ce_clean", "scored on other weights",
           "make bench MODEL=moex TASK=language PRESET=tiny")
    assert not out_dir.exists()


@pytest.mark.parametrize("kind", ["dense", "moex"])
def test_an_identity_splice_skipped_gives_the_numbers_of_running_it(kind):
    from adapters.dense import DenseAdapter
    from adapters.moe import MoEXAdapter
    from models.config import GPTConfig
    from models.gpt import GPT

    cls = DenseAdapter if kind == "dense" else MoEXAdapter
    torch.manual_seed(0)
    model = GPT(cls.model_config(GPTConfig(vocab_size=32, n_ctx=16, d_model=16, n_layers=2, n_heads=2,
                                           d_mlp=64))).eval()
    with torch.no_grad():  # the block's output scaled up, so the ablation's KL stands well above float noise
        mlp = model.blocks[1].mlp
        (mlp.W_dec if kind == "moex" else mlp.W_out.weight).mul_(50)
    tokens = torch.randint(0, 32, (5, 16), generator=torch.Generator().manual_seed(1))
    skipped = core_metrics(cls(model), tokens, 1, "mlp", batch_size=2)
    run = core_metrics(_with(cls(model), splice_is_identity=lambda layer, site: False), tokens, 1, "mlp", batch_size=2)
    flat = lambda c: {(cat, k): v for cat, m in c["metrics"].items() for k, v in m.items()}  # noqa: E731
    ran = flat(run)
    for key, value in flat(skipped).items():  # MoE-X's z put back is built densely: equal to float rounding
        assert value == pytest.approx(ran[key], abs=1e-6), key
    assert skipped["feature_density"] == run["feature_density"]
