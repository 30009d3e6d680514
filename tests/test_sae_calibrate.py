"""experiments/sae_calibrate.py: several settings in one point, the floor's random-init model, bad points."""

import re

from bench import registry
from bench.model_store import load_or_train
from experiments.sae_calibrate import main


def test_a_point_sets_several_settings_on_either_model(capsys):
    load_or_train(registry.model_adapter("dense"), registry.task("chess"), "tiny", 0, "cpu")  # what it calibrates on
    point = "jumprelu:batch_tokens:512:jumprelu_init_threshold:0.05"
    for extra in ([], ["--random-init"]):
        assert main([point, "--preset", "tiny", "--tokens", "8192", "--threads", "1", *extra]) == 0
    out = capsys.readouterr().out
    assert len(re.findall(rf"^{re.escape(point)}: L0 [\d.]+ EV ", out, re.M)) == 2


def test_a_bad_point_is_one_line_and_exit_2(capsys):
    assert main(["jumprelu:batch_tokens", "--preset", "tiny"]) == 2
    assert main(["jumprelu:nope:3", "--preset", "tiny"]) == 2
    assert main(["jumprelu:k:three", "--preset", "tiny"]) == 2
    assert main(["relu:k:3", "--preset", "tiny"]) == 2
    assert main(["topk:k:32.5", "--preset", "tiny"]) == 2
    assert main(["topk:lr:inf", "--preset", "tiny"]) == 2
    assert main(["topk:tokens:100", "--preset", "tiny"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 7  # one line each, before any model is loaded
    assert "is not ARCH:SETTING:VALUE" in err[0] and "'nope' is not an SAE setting" in err[1]
    assert "k needs a finite whole number, not 'three'" in err[2] and "architecture 'relu' unknown" in err[3]
    assert "k needs a finite whole number, not '32.5'" in err[4] and "lr needs a finite number, not 'inf'" in err[5]
    assert "the training length is --tokens" in err[6]
