"""Every preset of the tasks that fit dictionaries has SAE and semi-NMF settings: a preset without
its own entry takes the defaults (the cpu preset's) instead of failing after the model is trained."""

import pytest

from bench import sae_training, snmf_store
from tasks.chess.presets import PRESETS as CHESS
from tasks.language.presets import PRESETS as LANGUAGE


@pytest.mark.parametrize("preset", sorted(set(CHESS) | set(LANGUAGE)))
def test_every_preset_has_dictionary_settings(preset):
    sae = sae_training.settings_for("topk", preset)
    snmf = snmf_store.settings_for(preset)
    if preset in sae_training.PRESET_SETTINGS:
        assert sae.tokens == sae_training.PRESET_SETTINGS[preset].get("tokens", sae_training.SAESettings("topk").tokens)
    else:
        assert sae == sae_training.SAESettings("topk") and snmf == snmf_store.SNMFSettings()


def test_the_tiny_move_presets_train_tiny_dictionaries():
    for preset in ("tiny-moves", "gpu-smoke"):
        assert sae_training.settings_for("topk", preset).tokens == sae_training.settings_for("topk", "tiny").tokens
        assert snmf_store.settings_for(preset) == snmf_store.settings_for("tiny")


def test_the_committed_saes_are_what_their_settings_ask_for():
    """A settings change that marks a committed SAE stale would make every clean checkout refit it
    (or refuse to, under MOEXBENCH_NO_TRAIN)."""
    import json

    from core.own_data import COMMITTED_CHECKPOINTS

    records = [(path, json.loads(path.read_text())["settings"])
               for path in sorted(COMMITTED_CHECKPOINTS.glob("*/dense_*-cpu*/moexbench.json"))]
    saes = [(path, settings) for path, settings in records if "architecture" in settings]  # not semi-NMF's
    assert len(saes) >= 6, "the committed SAEs, attention SAEs and transcoders of chess and language (and seeds)"
    for path, settings in saes:
        assert settings == sae_training.settings_for(settings["architecture"], "cpu").__dict__, path


def test_jumprelu_takes_its_own_batch_and_a_tiny_preset_still_wins():
    jumprelu, topk = sae_training.settings_for("jumprelu", "cpu"), sae_training.settings_for("topk", "cpu")
    assert (jumprelu.batch_tokens, jumprelu.tokens, topk.batch_tokens) == (1024, topk.tokens, 4096)
    tiny = sae_training.settings_for("jumprelu", "tiny")
    assert (tiny.jumprelu_init_threshold, tiny.tokens) == (0.05, 16_384)
