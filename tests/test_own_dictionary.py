"""Your own SAE or transcoder through a built-in model (bench/own_dictionary.py): its results go to a
folder of their own, never among the committed dictionary's, its floor is trained in its
architecture, and the commands that compare with the committed numbers refuse it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import registry
from bench.own_dictionary import variant_part
from core.errors import BenchError
from tasks.chess.task import ChessTask

ROOT = Path(__file__).resolve().parents[1]
VARIABLES = ("MOEXBENCH_SAE_PATH", "MOEXBENCH_SAE_RELEASE", "MOEXBENCH_TRANSCODER_PATH")


def _sae_folder(parent: Path, architecture: str = "topk", name: str = "my-sae") -> Path:
    """A SAELens SAE for the tiny dense model's MLP (128 wide); untrained: what is read, not how well."""
    import sae_lens
    from sae_lens.saes.sae import SAEMetadata

    cls, cfg = {"topk": (sae_lens.TopKSAE, sae_lens.TopKSAEConfig), "gated": (sae_lens.GatedSAE, sae_lens.GatedSAEConfig)}[architecture]
    extra = {"k": 8} if architecture == "topk" else {}
    folder = parent / name
    cls(cfg(d_in=128, d_sae=256, metadata=SAEMetadata(hook_name="blocks.1.mlp.hook_post"), **extra)).save_model(str(folder))
    return folder


@pytest.fixture
def clean(monkeypatch):
    for variable in VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    return monkeypatch


def test_without_the_variables_the_models_are_ours(clean):
    for model in ("dense+sae", "dense+transcoder", "dense"):
        cls = registry.model_adapter(model)
        assert cls.name == model and variant_part(cls) is None and not hasattr(cls, "own_dictionary")


def test_your_dictionary_gets_a_folder_named_after_its_path_and_its_architecture(clean, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = _sae_folder(tmp_path / "a"), _sae_folder(tmp_path / "b", "gated")
    clean.setenv("MOEXBENCH_SAE_PATH", str(first))
    one = registry.model_adapter("dense+sae")
    assert one.name == "dense+sae" and one.architecture == "topk"
    assert one.own_dictionary == {"variable": "MOEXBENCH_SAE_PATH", "value": str(first)}
    folder = variant_part(one)
    assert folder.startswith("dictionary.my-sae-") and len(folder) == len("dictionary.my-sae-") + 6
    assert variant_part(registry.model_adapter("dense+attn-sae")) == folder
    assert variant_part(registry.model_adapter("dense")) is None        # no dictionary: unaffected
    clean.chdir(tmp_path)                                               # the same folder, written relative
    clean.setenv("MOEXBENCH_SAE_PATH", "./a/my-sae")
    assert registry.model_adapter("dense+sae").own_dictionary == one.own_dictionary
    clean.setenv("MOEXBENCH_SAE_PATH", str(second))                     # same folder name, another path
    two = registry.model_adapter("dense+sae")
    assert variant_part(two) != folder and two.architecture == "gated"   # its floor is trained gated
    with pytest.raises(BenchError, match="asks for a standard SAE, but .* holds a gated one; use MODEL=dense\\+sae"):
        registry.model_adapter("dense+sae:standard")
    assert registry.model_adapter("dense+sae:gated").architecture == "gated"


def test_a_cfg_without_architecture_is_standard_as_saelens_reads_it(clean, tmp_path):
    folder = _sae_folder(tmp_path)
    cfg = json.loads((folder / "cfg.json").read_text())
    del cfg["architecture"]
    (folder / "cfg.json").write_text(json.dumps(cfg))
    clean.setenv("MOEXBENCH_SAE_PATH", str(folder))
    assert registry.model_adapter("dense+sae").architecture == "standard"


def test_a_release_and_a_transcoder_get_their_folders(clean, tmp_path):
    clean.setenv("MOEXBENCH_SAE_RELEASE", "gpt2-small-res-jb/blocks.8.hook_resid_pre")
    assert variant_part(registry.model_adapter("dense+sae")) == "dictionary.gpt2-small-res-jb_blocks.8.hook_resid_pre"
    (tmp_path / "tc").mkdir()
    (tmp_path / "tc" / "cfg.json").write_text("{}")
    clean.setenv("MOEXBENCH_TRANSCODER_PATH", str(tmp_path / "tc"))
    assert variant_part(registry.model_adapter("dense+transcoder")).startswith("dictionary.tc-")


@pytest.mark.parametrize("variable, value, words", [
    ("MOEXBENCH_SAE_PATH", "nope", "no such folder"),
    ("MOEXBENCH_SAE_PATH", ".", "not a SAELens folder \\(no cfg.json\\)"),
    ("MOEXBENCH_TRANSCODER_PATH", "nope", "no such folder"),
    ("MOEXBENCH_SAE_RELEASE", "gpt2-small-res-jb", "write it as <release>/<sae id>"),
    ("MOEXBENCH_SAE_RELEASE", "gpt2-small-res-jb/", "write it as <release>/<sae id>"),
    ("MOEXBENCH_SAE_RELEASE", "gpt2-small-res-jbb/blocks.8.hook_resid_pre",
     "no release 'gpt2-small-res-jbb'; did you mean gpt2-small-res-jb"),
    ("MOEXBENCH_SAE_RELEASE", "gpt2-small-res-jb/blocks.88.hook_resid_pre",
     "release gpt2-small-res-jb has no SAE 'blocks.88.hook_resid_pre' \\(13 ids, e.g. blocks.8.hook_resid_pre"),
])
def test_a_bad_variable_is_refused_when_the_model_is_named_before_any_training(clean, tmp_path, variable, value, words):
    clean.chdir(tmp_path)
    clean.setenv(variable, value)
    model = "dense+transcoder" if "TRANSCODER" in variable else "dense+sae"
    with pytest.raises(BenchError, match=f"^{variable}=.*{words}.*or unset it$"):
        registry.model_adapter(model)
    assert registry.model_adapter("moex").name == "moex"  # a model that reads no dictionary ignores it


def test_a_release_that_cannot_be_fetched_is_one_line_naming_the_offline_fix(tmp_path):
    code = ("from bench.sae_store import _from_release\n"
            "_from_release('gpt2-small-res-jb/blocks.8.hook_resid_pre', 'blocks.8.hook_resid_pre', 768, [], 'cpu', 12)")
    empty = str(tmp_path / "hf")  # an empty cache and no hub, whatever this machine's cache holds
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": empty, "HF_HUB_CACHE": empty}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 1, out.stdout[-2000:] + out.stderr[-2000:]
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("core.errors.BenchError: MOEXBENCH_SAE_RELEASE=gpt2-small-res-jb/blocks.8.hook_resid_pre: "
                           "SAELens could not load it ("), out.stderr[-2000:]
    assert last.endswith("save it with save_model(folder) and point MOEXBENCH_SAE_PATH at that folder")


def test_the_export_reads_a_result_only_with_the_dictionary_it_was_scored_with(clean, tmp_path):
    from bench.export_saebench import _load, _same_dictionary

    own = {"variable": "MOEXBENCH_SAE_PATH", "value": str(_sae_folder(tmp_path))}
    record = {"_path": "results/chess/dictionary.my-sae-abc123/dense+sae.json", "model": "dense+sae", "config": {},
              "provenance": {"own_dictionary": own}}
    with pytest.raises(BenchError, match=f"scored with your dictionary MOEXBENCH_SAE_PATH={own['value']}; set it again"):
        _load(record, ChessTask, "tiny", "cpu")
    clean.setenv("MOEXBENCH_SAE_PATH", own["value"])
    clean.chdir(tmp_path)  # a result from before paths were resolved recorded the folder as typed
    typed = {**record, "provenance": {"own_dictionary": {**own, "value": "./my-sae"}}}
    assert _same_dictionary(typed, registry.model_adapter("dense+sae")) is None  # the same folder: exported
    ours = {**record, "_path": "results/chess/dense+sae.json", "provenance": {}}
    with pytest.raises(BenchError, match="scored with the harness's own dictionary, and MOEXBENCH_SAE_PATH is set"):
        _load(ours, ChessTask, "tiny", "cpu")


def test_bench_writes_your_gated_sae_apart_with_a_gated_floor_and_grid_refuses_it(tmp_path):
    env = {**os.environ, "MOEXBENCH_RESULTS": str(tmp_path / "results"), "MOEXBENCH_CHECKPOINTS": str(tmp_path / "ckpt"),
           "MOEXBENCH_RUNS": str(tmp_path / "runs"), "MOEXBENCH_CACHE": str(tmp_path / "cache"), "CI": "true"}
    for variable in VARIABLES:
        env.pop(variable, None)

    def run(*args, extra=None):
        return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=900, env={**env, **(extra or {})})

    out = run("bench", "train", "--model", "dense", "--task", "chess", "--preset", "tiny", "--threads", "1")
    assert out.returncode == 0, out.stderr[-2000:]
    folder = _sae_folder(tmp_path, "gated")
    mine = {"MOEXBENCH_SAE_PATH": str(folder)}
    out = run("bench", "bench", "--model", "dense+sae", "--task", "chess", "--preset", "tiny", "--threads", "2",
              "legal_move_games=0", "probe_games=20", extra=mine)
    assert out.returncode == 0, out.stderr[-2000:]
    results = tmp_path / "results" / "chess" / "tiny"
    written = sorted(p.relative_to(results) for p in results.rglob("*.json"))
    assert len(written) == 1 and written[0].name == "dense+sae.json", written
    assert "dictionary.my-sae-" in written[0].parent.name                  # beside the committed ones: never
    record = json.loads((results / written[0]).read_text())
    assert record["provenance"]["own_dictionary"] == {"variable": "MOEXBENCH_SAE_PATH", "value": str(folder)}
    assert str(folder) in record["provenance"]["features_from"]["source"]
    assert record["provenance"]["torch_threads"] == 2                      # --threads reaches the result
    assert "coverage_random_init" in record["metrics"]
    assert list((tmp_path / "cache" / "saes" / "chess").glob("*gated*-random-*"))  # the floor SAE: gated
    out = run("bench", "bench", "--model", "all", "--task", "chess", "--preset", "tiny", extra=mine)
    assert out.returncode == 2 and "MODEL=all scores the committed models" in out.stderr, out.stderr[-2000:]
    out = run("bench.grid", "--task", "chess", "--preset", "tiny", "--dry-run", extra=mine)
    assert out.returncode == 2 and "MOEXBENCH_SAE_PATH is set here; unset it" in out.stderr, out.stderr[-2000:]


def test_your_sae_that_cannot_read_the_scored_site_is_refused_before_any_work(clean, tmp_path):
    from bench.run_target import checked_target, settings_for

    clean.setenv("MOEXBENCH_SAE_PATH", str(_sae_folder(tmp_path)))  # blocks.1.mlp.hook_post, 128 wide
    clean.setenv("MOEXBENCH_RESULTS", str(tmp_path / "results"))
    sae_model = registry.model_adapter("dense+sae")
    for setting, words in [("layer=-2", r"trained on blocks\.1\.mlp\.hook_post, but the task reads blocks\.2\.mlp"),
                           ("site=resid", r"trained on blocks\.1\.mlp\.hook_post, but the task reads "
                                          r"blocks\.1\.hook_resid_post; score that site with ARGS='layer=1 site=mlp'")]:
        with pytest.raises(BenchError, match=words):
            checked_target(sae_model, ChessTask, settings_for(sae_model, ChessTask, [setting]), "tiny", 0)
    checked_target(sae_model, ChessTask, settings_for(sae_model, ChessTask, []), "tiny", 0)  # the site it reads
