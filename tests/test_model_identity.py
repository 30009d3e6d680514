"""Results that name one checkpoint but were scored on different weights (the checkpoint was trained
again) are found, by parameter digest or, for older results, by training run, and named in the
summary and by the run that writes one; results that agree, or belong to other data, another
model file or another preset, are not."""

import json

import torch

from bench.model_identity import conflicts, parameters_sha256, run_warning, summary_lines
from bench.report import write_summary
from core.results import write_result

SEED2 = "checkpoints/chess/dense-cpu-seed2"
RUN_A, RUN_B = {"seconds": 8202.8, "steps": 7000, "tokens": 14336000}, {"seconds": 7111.5, "steps": 7000, "tokens": 14336000}


def _write(root, relative, checkpoint=SEED2, digest=None, dictionary_digest=None, trained=None, preset="cpu",
           created="2026-12-01T10:00", **extra):
    provenance = {"checkpoint": checkpoint, "created": created, **extra}
    if digest:
        provenance["model_weights_sha256"] = digest
    if dictionary_digest:
        provenance["features_from"] = {"model_weights_sha256": dictionary_digest}
    if trained:
        provenance["trained"] = trained
    path = root / "chess" / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"model": "m", "preset": preset, "provenance": provenance}))


def _files(found):
    return [[s.file for s in group] for groups in found.values() for group in groups]


def test_a_dictionary_over_a_retrained_model_is_grouped_apart_from_the_model(tmp_path, monkeypatch):
    monkeypatch.setenv("MOEXBENCH_RESULTS", str(tmp_path))
    _write(tmp_path, "seeds/dense.seed2.json", digest="a" * 64, created="2026-12-01T10:00")
    _write(tmp_path, "layer.-1/seeds/dense.seed2.json", digest="a" * 64, created="2026-12-02T08:00")
    _write(tmp_path, "seeds/dense+sae.seed2.json", dictionary_digest="b" * 64, created="2026-12-05T09:30")
    _write(tmp_path, "dense.json", "checkpoints/chess/dense-cpu", digest="c" * 64)  # its own checkpoint: fine
    # the model scored first, its results in the order they ran; then the retrained one
    assert _files(conflicts("chess", "cpu")) == [["seeds/dense.seed2.json", "layer.-1/seeds/dense.seed2.json"],
                                                 ["seeds/dense+sae.seed2.json"]]


def test_results_older_than_digests_are_told_apart_by_their_training_run(tmp_path, monkeypatch):
    monkeypatch.setenv("MOEXBENCH_RESULTS", str(tmp_path))
    _write(tmp_path, "seeds/dense.seed2.json", trained=RUN_A, created="2026-12-01T10:00")
    _write(tmp_path, "seeds/dense+sae.seed2.json", dictionary_digest="a" * 64, trained=RUN_A, created="2026-12-02T10:00")
    _write(tmp_path, "layer.-1/seeds/dense.seed2.json", digest="b" * 64, trained=RUN_B, created="2026-12-05T10:00")
    # the undigested result joins the digest its training run was scored with: two models, not three
    assert _files(conflicts("chess", "cpu")) == [["seeds/dense.seed2.json", "seeds/dense+sae.seed2.json"],
                                                 ["layer.-1/seeds/dense.seed2.json"]]


def test_agreeing_unplaceable_and_unrelated_results_are_not_flagged(tmp_path, monkeypatch):
    monkeypatch.setenv("MOEXBENCH_RESULTS", str(tmp_path))
    stem = "checkpoints/chess/dense-cpu"
    _write(tmp_path, "dense.json", stem, digest="a" * 64, trained=RUN_A)
    _write(tmp_path, "dense+sae.json", stem, dictionary_digest="a" * 64, trained=RUN_A)
    _write(tmp_path, "layer.-1/dense.json", stem, trained=RUN_A)  # older, same training run
    _write(tmp_path, "layer.-2/dense.json", stem)                 # no mark at all: cannot be placed
    _write(tmp_path, "short/dense.json", stem, digest="d" * 64, preset="short")  # another preset's folder
    _write(tmp_path, "data.mine-abc123/dense.json", stem, digest="e" * 64, data={"folder": "mine"})  # your data
    _write(tmp_path, "dense-ext.json", stem, digest="f" * 64, model_spec="nanogpt:x/checkpoints/chess/dense-cpu")
    (tmp_path / "chess" / "training_curve_dense.json").write_text("[1, 2]")  # not a result
    (tmp_path / "chess" / "broken.json").write_text("{")
    (tmp_path / "chess" / "odd.json").write_text(json.dumps({"preset": "cpu", "provenance": [1]}))
    (tmp_path / "chess" / "odd2.json").write_text(json.dumps(
        {"preset": "cpu", "provenance": {"checkpoint": stem, "model_weights_sha256": 5, "features_from": "x"}}))
    assert conflicts("chess", "cpu") == {}


def _result(variant, digest, created):
    path = write_result("chess", "dense", "cpu", 0, {"coverage": 0.1}, {}, {},
                        {"checkpoint": "checkpoints/chess/dense-cpu", "model_weights_sha256": digest}, variant=variant)
    record = json.loads(path.read_text())
    record["provenance"]["created"] = created  # the order they ran in, fixed for the test
    path.write_text(json.dumps(record))
    return path


def test_the_summary_and_the_run_name_what_to_score_again(tmp_path, monkeypatch):
    monkeypatch.setenv("MOEXBENCH_RESULTS", str(tmp_path))
    old = _result(None, "a" * 64, "2026-12-01T10:00")
    new = _result("layer.-1", "b" * 64, "2026-12-05T10:00")
    write_summary("chess", "cpu", "layer.-1")
    head, _ = (new.parent / "summary.md").read_text().split("Headline metrics")
    assert "**Mixed models.** The results over `checkpoints/chess/dense-cpu` were scored on different weights" in head
    assert "dense.json (2026-12-01T10:00); then layer.-1/dense.json (2026-12-05T10:00)" in head  # before any number
    # the run that wrote the newer names the earlier result, not its own, and the reverse
    warning = run_warning("chess", "cpu", new)
    assert warning.startswith("warning: results over checkpoints/chess/dense-cpu were scored on other weights than "
                              "this run's") and ": dense.json (2026-12-01T10:00). Score them again" in warning
    assert ": layer.-1/dense.json (2026-12-05T10:00). Score them again" in run_warning("chess", "cpu", old)
    _result("layer.-1", "a" * 64, "2026-12-06T10:00")  # scored again on the first weights: nothing to say
    assert run_warning("chess", "cpu", new) is None
    write_summary("chess", "cpu", "layer.-1")
    assert "Mixed models" not in (new.parent / "summary.md").read_text()


def test_a_summary_names_only_checkpoints_with_a_result_in_its_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("MOEXBENCH_RESULTS", str(tmp_path))
    _write(tmp_path, "seeds/dense.seed2.json", digest="a" * 64)
    _write(tmp_path, "layer.-1/seeds/dense.seed2.json", digest="b" * 64)
    _write(tmp_path, "layer.-4/dense.json", "checkpoints/chess/dense-cpu", digest="c" * 64)
    assert len(summary_lines("chess", "cpu", tmp_path / "chess")) == 1
    assert len(summary_lines("chess", "cpu", tmp_path / "chess" / "layer.-1")) == 1
    assert summary_lines("chess", "cpu", tmp_path / "chess" / "layer.-4") == []


def test_parameters_sha256_follows_the_weights_not_the_object():
    torch.manual_seed(0)
    a = torch.nn.Linear(3, 2)
    b = torch.nn.Linear(3, 2)
    b.load_state_dict(a.state_dict())
    assert parameters_sha256(a) == parameters_sha256(b)
    with torch.no_grad():
        b.bias[0] += 1e-6
    assert parameters_sha256(a) != parameters_sha256(b)
