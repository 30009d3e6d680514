"""Refusals that must come before any work: before a checkpoint is trained, a position label computed or
a folder made, a run that cannot finish (a block or site the model lacks, a folder it cannot write, a
checkpoint of the other token format) says so in one line."""

import os
import shutil
import subprocess
import sys

import pytest

from tests.bad_input_sandbox import BENCH_TINY, ROOT, TRAIN_TINY, Sandbox


@pytest.mark.parametrize("setting, words", [
    (("--model", "dense", "layer=-9"), "layer -9 does not exist: the model has 4 blocks"),
    (("--model", "dense", "layer=7"), "layer 7 does not exist"),
    (("--model", "dense+transcoder", "site=resid"), "its only site is mlp (got site=resid)"),
    (("--model", "dense+snmf", "site=attn"), "semi-NMF factorises the MLP's hidden units"),
    (("--model", "nanogpt:/nonexistent/ckpt.pt"), "nanogpt:/nonexistent/ckpt.pt: no such file"),
], ids=["block-before-the-first", "block-past-the-last", "transcoder-off-the-mlp", "snmf-off-the-mlp",
        "missing-nanogpt-file"])
def test_what_the_model_lacks_is_refused_before_its_checkpoint_trains_or_a_label_is_computed(tmp_path, setting, words):
    scratch = {f"MOEXBENCH_{name.upper()}": str(tmp_path / name)
               for name in ("results", "checkpoints", "runs", "cache")}
    env = {**os.environ, "MOEXBENCH_THREADS": "1", "CI": "true", **scratch}
    out = subprocess.run([sys.executable, "-m", "bench", "bench", "--task", "chess", "--preset", "tiny", "--threads",
                          "1", *setting], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1 and words in lines[0], out.stderr[-2000:]
    assert list(tmp_path.iterdir()) == []  # no checkpoint trained, no label cached, no folder made


def test_your_transcoder_of_another_block_is_refused_before_its_model_trains_or_a_label_is_computed(tmp_path):
    from bench import transcoder_training as tt

    folder = tmp_path / "tc"
    tt.save_transcoder(tt.new_transcoder(32, 64, 32, 4, 2), folder, {"k": 4})  # block 2; tiny scores block 1
    scratch = {f"MOEXBENCH_{name.upper()}": str(tmp_path / name)
               for name in ("results", "checkpoints", "runs", "cache")}
    env = {**os.environ, "MOEXBENCH_THREADS": "1", "CI": "true", "MOEXBENCH_TRANSCODER_PATH": str(folder), **scratch}
    out = subprocess.run([sys.executable, "-m", "bench", "bench", "--task", "chess", "--preset", "tiny", "--threads",
                          "1", "--model", "dense+transcoder"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1, out.stderr[-2000:]
    assert f"{folder} is not a transcoder of block 1's MLP (it reads blocks.2.ln2.hook_normalized" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tc"]  # no model trained, no label cached, no folder


def test_an_unwritable_results_folder_is_refused_before_any_work(tmp_path, tiny_checkpoint):
    sandbox = Sandbox(tmp_path, tiny_checkpoint)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    env = {**sandbox.env(), "MOEXBENCH_RESULTS": str(blocker / "results")}
    out = sandbox.run(*BENCH_TINY, env=env)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().startswith(f"error: cannot write to {blocker}/results/chess/tiny")


def test_a_run_refused_after_its_folder_was_checked_leaves_no_empty_folder(tmp_path, tiny_checkpoint):
    sandbox = Sandbox(tmp_path, tiny_checkpoint)
    out = sandbox.run(*BENCH_TINY, "layer=-9")        # refused once the model's depth is known
    assert out.returncode == 2 and "layer -9 does not exist" in out.stderr.strip().splitlines()[-1]
    assert not sandbox.results.exists(), sorted(sandbox.results.rglob("*"))


def test_a_model_to_train_into_an_unwritable_folder_is_refused_before_the_labels(tmp_path, tiny_checkpoint):
    sandbox = Sandbox(tmp_path, tiny_checkpoint)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    out = sandbox.run("bench", "--model", "moex", "--task", "chess", "--preset", "tiny", "--threads", "1",
                      env={**sandbox.env(), "MOEXBENCH_CHECKPOINTS": str(blocker / "ckpt")})
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().startswith(f"error: cannot write to {blocker}/ckpt/chess")
    assert not (sandbox.root / "cache").exists() and not (sandbox.root / "runs").exists()


def test_a_checkpoint_of_the_other_format_is_refused_before_the_labels(tmp_path, tiny_checkpoint):
    sandbox = Sandbox(tmp_path, tiny_checkpoint)
    for suffix in (".json", ".safetensors"):  # the character-format tiny model, under the move-format name
        shutil.copy(sandbox.stem.with_suffix(suffix), sandbox.stem.with_name("dense-tiny-moves").with_suffix(suffix))
    out = sandbox.run("bench", "--model", "dense", "--task", "chess", "--preset", "tiny-moves", "--threads", "1")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "trained in the 'chars' token format, but preset tiny-moves reads 'moves'" in out.stderr.strip()
    assert len(out.stderr.strip().splitlines()) == 1
    assert not (sandbox.root / "cache").exists() and not (sandbox.root / "results").exists()


def test_an_unwritable_checkpoints_folder_is_refused_before_training(tmp_path, tiny_checkpoint):
    sandbox = Sandbox(tmp_path, tiny_checkpoint)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    out = sandbox.run(*TRAIN_TINY, env={**sandbox.env(), "MOEXBENCH_CHECKPOINTS": str(blocker / "ckpt")})
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().startswith(f"error: cannot write to {blocker}/ckpt/chess")
    assert not (sandbox.root / "runs").exists()
