"""A killed transcoder fit resumes from its last saved state and ends with the transcoder an unbroken fit
gives, bit for bit (bench/sae_resume.LoopCheckpoints in bench/transcoder_training.py)."""

import json

import pytest
import torch

from bench.sae_resume import LoopCheckpoints
from bench.sae_training import settings_for
from bench.transcoder_training import paired_stream, train_transcoder
from tests.fit_resume_helpers import Killed, killed_after, same_weights as _same, tiny_dense_and_batches

RECORD = {"settings": "tiny", "hook": "blocks.1.ln2.hook_normalized", "seed": 0}


def KilledAfterSaves(folder, saves):
    return killed_after(LoopCheckpoints, folder, RECORD, saves)


@pytest.fixture(scope="module")
def setup():
    return tiny_dense_and_batches()


def _fit(setup, checkpoints=None, tokens=32_768, d_sae=64, k=32):
    model, batch_fn = setup
    settings = settings_for("topk", "tiny", tokens=tokens, k=k)
    return train_transcoder(model, 1, d_sae, settings, batch_fn, 0, checkpoints)


def test_a_fit_killed_mid_pool_resumes_to_the_unbroken_fits_transcoder(setup, tmp_path, capsys):
    # 32 steps of 1,024 token pairs; a pool of the stream is 16 batches. Killed after the save before
    # step 20: the resumed stream skips one pool and 4 batches of the next.
    folder = tmp_path / "resume"
    unbroken = _fit(setup)
    with pytest.raises(Killed):
        _fit(setup, KilledAfterSaves(folder, 20))
    [state] = list(folder.iterdir())
    assert state.name == "step-20" and json.loads((state / "moexbench_resume.json").read_text())["step"] == 20
    resumed = _fit(setup, LoopCheckpoints(folder, RECORD, every_s=0))
    assert "resuming at step 20" in capsys.readouterr().out
    assert _same(resumed, unbroken)
    assert [p.name for p in folder.iterdir()] == ["step-31"]  # the resumed fit went on saving


def test_a_resume_past_the_dead_latent_window_carries_the_firing_counters(setup, tmp_path):
    # 64 steps, 2,048 latents of which 2 fire per token: many never fire, so from step 51 on (silent for
    # more than 50 steps) the AuxK loss trains them, reading the counters the state carries. Resumed at
    # step 55 without them, no latent would be dead before step 106 and the fit would differ.
    folder = tmp_path / "resume"
    shape = dict(tokens=65_536, d_sae=2048, k=2)
    unbroken = _fit(setup, **shape)
    with pytest.raises(Killed):
        _fit(setup, KilledAfterSaves(folder, 55), **shape)
    resumed = _fit(setup, LoopCheckpoints(folder, RECORD, every_s=1e9), **shape)
    assert _same(resumed, unbroken)


def test_a_state_that_cannot_be_read_is_removed_and_the_fit_starts_over(setup, tmp_path, capsys):
    folder = tmp_path / "resume"
    with pytest.raises(Killed):
        _fit(setup, KilledAfterSaves(folder, 3))
    [state] = list(folder.iterdir())
    (state / "carried.safetensors").write_bytes(b"damaged")
    fresh = _fit(setup, LoopCheckpoints(folder, RECORD, every_s=1e9))
    said = capsys.readouterr().out
    assert "transcoder fit: the saved state at" in said and "is unreadable" in said and not folder.exists()
    assert _same(fresh, _fit(setup))


@pytest.mark.parametrize("batch_tokens", [1024, 1000])  # a pool (16,384 pairs) of 16 batches; of 16 and 384 left over
def test_skipping_batches_gives_the_rest_of_the_same_paired_stream(setup, batch_tokens):
    model, batch_fn = setup
    whole = paired_stream(model, 1, batch_fn, batch_tokens, 0)
    expected = [next(whole) for _ in range(40)]
    for skip in (0, 5, 16, 21):
        rest = paired_stream(model, 1, batch_fn, batch_tokens, 0, skip_batches=skip)
        assert all(torch.equal(a, b) for i in range(skip, 40) for a, b in zip(next(rest), expected[i]))


def test_a_state_that_fails_to_load_is_removed_and_the_run_stops_in_one_line(tmp_path):
    from core.errors import BenchError

    def parts(width):
        module = torch.nn.Linear(width, width)
        return module, torch.optim.Adam(module.parameters()), {"count": torch.zeros(width)}

    saved = LoopCheckpoints(tmp_path / "resume", RECORD, every_s=0)
    saved.maybe_save(1, *parts(2))
    module, optimiser, carried = parts(3)  # read fine, but its parameters fit another module
    one_line = r"step-1 failed to load \(RuntimeError: [^\n]*\) and is removed; run the same command"
    with pytest.raises(BenchError, match=one_line):
        LoopCheckpoints(tmp_path / "resume", RECORD).restore(module, optimiser, carried)
    assert not (tmp_path / "resume").exists()

