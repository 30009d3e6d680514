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
