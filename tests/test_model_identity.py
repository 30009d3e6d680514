"""Results that name one checkpoint but were scored on different weights (the checkpoint was trained
again) are found and named; results that agree, or record no digest, are not."""

import json

from bench.model_identity import mixed_models, scored_weights


def _write(root, relative, checkpoint, digest=None, dictionary_digest=None, preset="cpu", created="2026-12-01T10:00"):
    provenance = {"checkpoint": checkpoint, "created": created}
    if digest:
        provenance["model_weights_sha256"] = digest
    if dictionary_digest:
        provenance["features_from"] = {"model_weights_sha256": dictionary_digest}
    path = root / "chess" / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"model": "m", "preset": preset, "provenance": provenance}))


def test_a_dictionary_over_a_retrained_model_is_named_beside_the_model(tmp_path, monkeypatch):
    monkeypatch.setenv("MOEXBENCH_RESULTS", str(tmp_path))
    seed2 = "checkpoints/chess/dense-cpu-seed2"
    _write(tmp_path, "seeds/dense.seed2.json", seed2, digest="a" * 64, created="2026-12-01T10:00")
    _write(tmp_path, "layer.-1/seeds/dense.seed2.json", seed2, digest="a" * 64, created="2026-12-02T08:00")
    _write(tmp_path, "seeds/dense+sae.seed2.json", seed2, dictionary_digest="b" * 64, created="2026-12-05T09:30")
    _write(tmp_path, "dense.json", "checkpoints/chess/dense-cpu", digest="c" * 64)  # its own checkpoint: fine
    [line] = mixed_models("chess", "cpu")
    assert line.startswith(f"{seed2}: its results were scored on different weights")
    # the model scored first, then the retrained one, each with its results in the order they ran
    assert ("seeds/dense.seed2.json (2026-12-01T10:00), layer.-1/seeds/dense.seed2.json (2026-12-02T08:00) on "
            "aaaaaaaaaaaa; seeds/dense+sae.seed2.json (2026-12-05T09:30) on bbbbbbbbbbbb.") in line
    assert "dense-cpu:" not in line and "Score the earlier ones again" in line


def test_agreeing_undigested_and_other_preset_results_are_not_flagged(tmp_path, monkeypatch):
    monkeypatch.setenv("MOEXBENCH_RESULTS", str(tmp_path))
    stem = "checkpoints/chess/dense-cpu"
    _write(tmp_path, "dense.json", stem, digest="a" * 64)
    _write(tmp_path, "dense+sae.json", stem, dictionary_digest="a" * 64)
    _write(tmp_path, "layer.-1/dense.json", stem)  # scored before digests were recorded: unknown, not mixed
    _write(tmp_path, "short/dense.json", stem, digest="d" * 64, preset="short")  # another preset's folder
    (tmp_path / "chess" / "training_curve_dense.json").write_text("[1, 2]")  # not a result
    (tmp_path / "chess" / "broken.json").write_text("{")
    assert mixed_models("chess", "cpu") == []


def test_scored_weights_prefers_the_runs_own_digest():
    both = {"provenance": {"model_weights_sha256": "own", "features_from": {"model_weights_sha256": "dict"}}}
    assert scored_weights(both) == "own"
    assert scored_weights({"provenance": {"features_from": {"model_weights_sha256": "dict"}}}) == "dict"
    assert scored_weights({}) is None
