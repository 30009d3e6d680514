"""A killed SAE fit resumes from its last saved state and ends with the SAE an unbroken fit gives,
bit for bit, in every architecture (bench/sae_resume.py); the SAE and transcoder stores resume a killed
fit and clear its state once the dictionary is saved."""

import json

import pytest
import torch

from bench import registry
from bench.model_store import load_or_train
from bench.sae_resume import FitCheckpoints
from bench.sae_training import activation_stream, settings_for, train_sae
from tests.fit_resume_helpers import Killed, killed_after, same_weights as _same, tiny_dense_and_batches

HOOK = "blocks.1.mlp.hook_post"
RECORD = {"settings": "tiny", "hook": HOOK, "seed": 0}


def KilledAfterSaves(folder, saves):
    return killed_after(FitCheckpoints, folder, RECORD, saves)


@pytest.fixture(scope="module")
def setup():
    return tiny_dense_and_batches()


def _kill_then_resume(setup, folder, architecture, tokens, saves, resumed_every_s):
    """An unbroken fit, and the same fit killed after its `saves`-th save (one before every step) and run
    again; returns both SAEs and the saved state the second run resumed from."""
    model, batch_fn = setup
    settings = settings_for(architecture, "tiny", tokens=tokens)
    unbroken = train_sae(model, HOOK, 64, settings, batch_fn, 0, "cpu")
    with pytest.raises(Killed):
        train_sae(model, HOOK, 64, settings, batch_fn, 0, "cpu", KilledAfterSaves(folder, saves))
    [state] = list(folder.iterdir())
    meta = json.loads((state / "moexbench_resume.json").read_text())
    resumed = train_sae(model, HOOK, 64, settings, batch_fn, 0, "cpu",
                        FitCheckpoints(folder, RECORD, every_s=resumed_every_s))
    return unbroken, resumed, state.name, meta["batches_read"]


@pytest.mark.parametrize("architecture", ["topk", "batchtopk", "standard", "gated", "jumprelu"])
def test_a_fit_killed_mid_pool_resumes_to_the_unbroken_fits_sae(architecture, setup, tmp_path, capsys):
    # 32 steps of 1,024 rows; a pool of the stream is 16 batches, the norm estimate reads 4. Killed after
    # the save before step 14: 18 batches read, so the resumed stream skips one pool and 2 batches of the
    # next. The resumed fit saves before every step again: first over the state it resumed from (skipped).
    folder = tmp_path / "resume"
    unbroken, resumed, state, read = _kill_then_resume(setup, folder, architecture, 32_768, 14, 0)
    assert (state, read) == ("step-14", 18)
    assert "resuming at step 14" in capsys.readouterr().out
    assert _same(resumed, unbroken)
    assert [p.name for p in folder.iterdir()] == ["step-31"]


@pytest.mark.parametrize("architecture", ["topk", "jumprelu"])
def test_a_fit_resumed_past_its_sparsity_window_and_dead_latent_window_matches_too(architecture, setup, tmp_path):
    # 64 steps; the sparsity window and the dead-latent window are 50 steps. No state is saved at step 50
    # (its statistics were just reset), so the 50th save is before step 51, and the resumed fit carries
    # both windows' counters.
    unbroken, resumed, state, _ = _kill_then_resume(setup, tmp_path / "resume", architecture, 65_536, 50, 1e9)
    assert state == "step-51"
    assert _same(resumed, unbroken)


def _topk_fit_killed_after_three_saves(setup, folder):
    """The tiny top-k fit's settings, after that fit was killed with three states saved in `folder`."""
    model, batch_fn = setup
    settings = settings_for("topk", "tiny")
    with pytest.raises(Killed):
        train_sae(model, HOOK, 64, settings, batch_fn, 0, "cpu", KilledAfterSaves(folder, 3))
    return settings


def test_a_state_saved_for_another_record_is_removed_and_the_fit_starts_over(setup, tmp_path, capsys):
    model, batch_fn = setup
    folder = tmp_path / "resume"
    settings = _topk_fit_killed_after_three_saves(setup, folder)
    other = FitCheckpoints(folder, {**RECORD, "seed": 1})
    fresh = train_sae(model, HOOK, 64, settings, batch_fn, 0, "cpu", other)  # too short to save one of its own
    assert "is for other settings" in capsys.readouterr().out
    assert not folder.exists()
    assert _same(fresh, train_sae(model, HOOK, 64, settings, batch_fn, 0, "cpu"))


def test_a_damaged_state_is_removed_and_the_fit_starts_over(tmp_path, capsys):
    state = tmp_path / "resume" / "step-9"
    state.mkdir(parents=True)
    (state / "moexbench_resume.json").write_text("{not json")
    assert FitCheckpoints(tmp_path / "resume", RECORD).restore(trainer=None) == 0
    assert "is unreadable (JSONDecodeError); starting over" in capsys.readouterr().out
    assert not (tmp_path / "resume").exists()


def test_a_damaged_trainer_file_is_found_before_the_trainer_changes_and_the_fit_starts_over(setup, tmp_path, capsys):
    model, batch_fn = setup
    folder = tmp_path / "resume"
    settings = _topk_fit_killed_after_three_saves(setup, folder)
    [state] = list(folder.iterdir())
    (state / "trainer_state.pt").write_bytes(b"damaged")  # SAELens's own file, which it loads second
    fresh = train_sae(model, HOOK, 64, settings, batch_fn, 0, "cpu", FitCheckpoints(folder, RECORD, every_s=1e9))
    assert "SAE fit: the saved state at" in capsys.readouterr().out and not folder.exists()
    assert _same(fresh, train_sae(model, HOOK, 64, settings, batch_fn, 0, "cpu"))


def test_a_partial_save_is_not_a_state(tmp_path):
    (tmp_path / "step-7.partial").mkdir()
    (tmp_path / "step-3").mkdir()  # no moexbench_resume.json: its save never finished
    assert FitCheckpoints(tmp_path, RECORD).restore(trainer=None) == 0


@pytest.mark.parametrize("batch_tokens", [1024, 1000])  # a pool (16,384 rows) of 16 batches; of 16 and 384 left over
def test_skipping_batches_gives_the_rest_of_the_same_stream(setup, batch_tokens):
    model, batch_fn = setup
    whole = activation_stream(model, HOOK, batch_fn, batch_tokens, 0)
    expected = [next(whole) for _ in range(40)]
    for skip in (0, 5, 16, 21):
        rest = activation_stream(model, HOOK, batch_fn, batch_tokens, 0, skip_batches=skip)
        assert all(torch.equal(next(rest), expected[i]) for i in range(skip, 40))


@pytest.mark.parametrize("model,store,attach", [("dense+sae", "sae_store", "attach_features"),
                                                ("dense+transcoder", "transcoder_store", "attach_transcoder")])
def test_the_store_resumes_a_killed_fit_and_clears_its_state_once_the_dictionary_is_saved(
        model, store, attach, monkeypatch, tmp_path, capsys):
    import importlib

    from bench import sae_resume, sae_store
    from tasks.chess.config import ChessConfig

    monkeypatch.setattr(sae_store, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(sae_store, "CACHE", tmp_path / "cache")  # the floor's dictionary lives there
    monkeypatch.setattr(sae_resume, "SAVE_EVERY_S", 0.0)
    task = registry.task("chess")
    adapter = load_or_train(registry.model_adapter(model), task, "tiny", 0, "cpu")[0]
    attach = getattr(importlib.import_module(f"bench.{store}"), attach)
    write = sae_resume._SavedStates._write

    def write_then_die(self, *args):
        write(self, *args)
        raise Killed

    monkeypatch.setattr(sae_resume._SavedStates, "_write", write_then_die)
    with pytest.raises(Killed):  # killed right after its first save
        attach(adapter, task, "tiny", 0, ChessConfig(), "cpu", role="random")
    [state] = (tmp_path / "runs" / "fits").glob("*/*.resume")
    monkeypatch.setattr(sae_resume._SavedStates, "_write", write)
    attach(adapter, task, "tiny", 0, ChessConfig(), "cpu", role="random")
    assert "resuming at step 1 from" in capsys.readouterr().out
    assert not state.exists() and adapter.sae is not None
