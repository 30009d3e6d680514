"""A superposition run killed part way finishes, run again, with an uninterrupted run's numbers: inside a
stage from its last saved state, across stages from the finished stages' records; a partial run
started with other settings is refused, naming the setting."""

import json
import shutil

import pytest
import torch

import core.paths
from bench.registry import model_adapter
from core.errors import BenchError
from tasks.superposition import resume, training
from tasks.superposition.config import SuperpositionConfig
from tasks.superposition.resume import ResumableRun, StageCheckpoint
from tasks.superposition.task import SuperpositionTask
from tasks.superposition.toy_model import ToyModels, ToySpec
train_models = training.train_models

SPEC = ToySpec(12, 4, 3, 1, hidden="relu", router="sparsity")
DENSITY = torch.tensor([1.0, 0.3])


class Killed(Exception):
    pass


class KilledAfter(StageCheckpoint):
    """Saves every step, then dies right after the save of step `at` (as a kill would, mid-run)."""

    def __init__(self, path, at):
        super().__init__(path, every_s=0.0)
        self.at = at

    def save(self, state):
        super().save(state)
        if state["step"] == self.at:
            raise Killed


def _train(monkeypatch, checkpoint=None):
    """(tail loss, weights, generator state, how many steps this call ran)."""
    steps, real = [], training.training_step

    def counted(*args, **kwargs):
        step = real(*args, **kwargs)
        return lambda: steps.append(1) or step()
    with monkeypatch.context() as m:
        m.setattr(training, "training_step", counted)
        g = torch.Generator().manual_seed(3)
        model = ToyModels(SPEC, len(DENSITY), g)
        tail = train_models(model, DENSITY, torch.ones(12), 40, 32, 1e-2, g, checkpoint=checkpoint)
    return tail, [p.detach().clone() for p in model.parameters()], g.get_state(), len(steps)


def test_a_stage_killed_mid_training_resumes_to_the_uninterrupted_weights(monkeypatch, tmp_path):
    straight = _train(monkeypatch)
    with pytest.raises(Killed):
        _train(monkeypatch, KilledAfter(tmp_path / "s.state.pt", at=38))  # inside the averaged tail
    resumed = _train(monkeypatch, StageCheckpoint(tmp_path / "s.state.pt"))
    assert resumed[3] == 2  # it went on from step 38, not from the start
    assert torch.equal(resumed[0], straight[0]) and torch.equal(resumed[2], straight[2])
    assert all(torch.equal(a, b) for a, b in zip(resumed[1], straight[1]))


class DiesInLastStage(StageCheckpoint):
    """Saves the specialisation stage every step and dies right after its save of step 5: the sweeps are
    finished then, and the stage in progress has a saved state."""

    def __init__(self, path, every_s):
        super().__init__(path, every_s=0.0 if "specialisation" in path.name else every_s)

    def save(self, state):
        super().save(state)
        if state["step"] == 5:
            raise Killed


def _killed_in_last_stage(monkeypatch, tmp_path):
    monkeypatch.setattr(core.paths, "RUNS", tmp_path / "runs")
    monkeypatch.setenv("MOEXBENCH_RESULTS", str(tmp_path / "results"))
    moex, config = model_adapter("moex"), SuperpositionConfig(eval_samples=256)
    with monkeypatch.context() as m:
        m.setattr(resume, "StageCheckpoint", DiesInLastStage)
        with pytest.raises(Killed):
            SuperpositionTask.run(moex, config, "tiny", 0, "cpu")
    in_progress = tmp_path / "runs" / "superposition" / "moex-tiny-seed0"
    finished = tmp_path / "results" / "superposition" / "tiny" / "unfinished" / "moex-seed0"
    return moex, config, in_progress, finished


@pytest.mark.parametrize("machine", ["same", "another"])
def test_a_killed_run_gives_the_uninterrupted_result(monkeypatch, tmp_path, capsys, machine):
    """On the same machine the stage in progress goes on from its saved state; on another machine only
    the committable results folder is there, and its finished stages carry the run."""
    moex, config, in_progress, finished = _killed_in_last_stage(monkeypatch, tmp_path)
    assert sorted(p.name for p in finished.iterdir()) == ["fingerprint.json", "sweep-e2m2k1.done.json",
                                                          "sweep-e4m1k2.done.json"]
    assert sorted(p.name for p in in_progress.iterdir()) == ["fingerprint.json", "specialisation-xavier.state.pt"]
    if machine == "another":
        shutil.rmtree(tmp_path / "runs")
    capsys.readouterr()
    resumed = SuperpositionTask.run(moex, config, "tiny", 0, "cpu")
    out = capsys.readouterr().out
    assert "stage sweep-e2m2k1 finished earlier" in out and "stage sweep-e4m1k2 finished earlier" in out
    assert ("stage specialisation-xavier resumes from" in out) == (machine == "same")
    resumed["on_written"]()
    assert not in_progress.exists() and not finished.parent.exists()  # a finished run leaves only its result

    straight = SuperpositionTask.run(moex, config, "tiny", 0, "cpu")
    assert resumed["metrics"] == straight["metrics"]
    time = resumed["details"].pop("time")
    straight["details"].pop("time")
    assert resumed["details"] == straight["details"]
    # the time of the stages finished before the kill comes back from their files, beside the new one's
    assert sorted(time["by_stage"]) == ["specialisation-xavier", "sweep-e2m2k1", "sweep-e4m1k2"]
    assert all(t["seconds"] > 0 and t["cpu_seconds"] > 0 for t in time["by_stage"].values())  # read back, not 0
    assert time["seconds"] > time["by_stage"]["specialisation-xavier"]["seconds"]  # the earlier stages count too


DAMAGE = {
    "truncated": lambda text, saved: text[:-40],
    # valid base64 and JSON, a generator state of the wrong size
    "short generator": lambda text, saved: json.dumps({**saved, "generator": saved["generator"][:-8]}),
    "no elapsed": lambda text, saved: json.dumps({k: v for k, v in saved.items() if k != "elapsed"}),
    "another run's": lambda text, saved: json.dumps({**saved, "fingerprint": "0" * 16}),
}


@pytest.mark.parametrize("damage, message", [
    ("truncated", r"is unreadable \(JSONDecodeError\)"),
    ("short generator", r"is unreadable \(RuntimeError\)"),
    ("no elapsed", r"is unreadable \(KeyError\)"),
    ("another run's", "was computed by a run with other settings or code"),
])
def test_a_damaged_or_foreign_finished_stage_is_refused_in_one_line(monkeypatch, tmp_path, damage, message):
    moex, config, in_progress, finished = _killed_in_last_stage(monkeypatch, tmp_path)
    done = finished / "sweep-e4m1k2.done.json"
    done.write_text(DAMAGE[damage](done.read_text(), json.loads(done.read_text())))
    with pytest.raises(BenchError, match=rf"finished stage .*sweep-e4m1k2.done.json {message}.*delete it"):
        SuperpositionTask.run(moex, config, "tiny", 0, "cpu")


@pytest.mark.parametrize("where", ["finished", "in_progress"])
def test_stages_from_other_code_or_without_a_fingerprint_are_refused_before_anything_is_written(
        monkeypatch, tmp_path, where):
    moex, config, in_progress, finished = _killed_in_last_stage(monkeypatch, tmp_path)
    folder = {"finished": finished, "in_progress": in_progress}[where]
    fingerprint = json.loads((folder / "fingerprint.json").read_text())
    (folder / "fingerprint.json").write_text(json.dumps({**fingerprint, "source": "0" * 16}))
    other = in_progress if where == "finished" else finished
    shutil.rmtree(other)
    with pytest.raises(BenchError, match=rf"partial run in {folder} was started with another source .*code of "
                                         rf"tasks/superposition.*delete {folder} to start the run over"):
        SuperpositionTask.run(moex, config, "tiny", 0, "cpu")
    assert not other.exists()  # the other folder was not made for a run that is refused
    (folder / "fingerprint.json").unlink()
    with pytest.raises(BenchError, match=rf"{folder} holds finished or saved stages but no fingerprint.json"):
        SuperpositionTask.run(moex, config, "tiny", 0, "cpu")


def test_a_stage_resumed_after_a_kill_counts_the_time_before_its_last_save(monkeypatch, tmp_path):
    with pytest.raises(Killed):
        _train(monkeypatch, KilledAfter(tmp_path / "s.state.pt", at=38))
    before = torch.load(tmp_path / "s.state.pt", weights_only=True)["elapsed"]
    assert before["seconds"] > 0 and before["cpu_seconds"] > 0
    resumed = StageCheckpoint(tmp_path / "s.state.pt")
    _train(monkeypatch, resumed)
    after = resumed.elapsed()
    assert after["seconds"] > before["seconds"] and after["cpu_seconds"] > before["cpu_seconds"]


def test_a_partial_run_with_other_settings_is_refused_naming_the_setting(tmp_path):
    ResumableRun(tmp_path / "run", {"preset": {"steps": 10}, "config": {"eval_samples": 256}})
    ResumableRun(tmp_path / "run", {"preset": {"steps": 10}, "config": {"eval_samples": 256}})  # the same: resumes
    with pytest.raises(BenchError, match=r"another config.eval_samples \(256, now 512\); delete .*run over"):
        ResumableRun(tmp_path / "run", {"preset": {"steps": 10}, "config": {"eval_samples": 512}})


def test_the_code_digest_covers_every_module_that_computes_and_only_those():
    from pathlib import Path

    from tasks.superposition.resume import COMPUTING

    here = {p.name for p in (Path(core.paths.ROOT) / "tasks" / "superposition").glob("*.py")}
    # A new module must be placed on one side: numbers (in the digest) or presentation (not).
    presentation = {"__init__.py", "figures.py", "paper_tables.py", "metric_defs.py", "deviations.py"}
    assert set(COMPUTING) | presentation == here and not set(COMPUTING) & presentation


def test_runs_that_measure_otherwise_never_replace_the_main_result():
    from core.task_config import apply_overrides

    variant = SuperpositionTask.result_variant
    assert variant(SuperpositionConfig()) is None
    assert variant(apply_overrides(SuperpositionConfig(), ["specialisation=false"])) == "specialisation.False"
    assert variant(apply_overrides(SuperpositionConfig(), ["importance_decay=0.9", "specialisation=false"])) == \
        "importance-0.9_specialisation.False"
    assert SuperpositionConfig.MEASUREMENT == ("mono_threshold", "min_norm", "eval_samples")


def test_a_run_still_going_is_not_read_as_results(monkeypatch, tmp_path):
    """Its finished stages sit beside the results: no variant list, identity check or expert table reads
    that folder, even where it holds what looks like a result."""
    from analysis.expert_loads import rows
    from bench.cli import _variant_folders
    from bench.model_identity import conflicts
    from core.results import result_dir, write_result

    _killed_in_last_stage(monkeypatch, tmp_path)
    folder = result_dir("superposition", "tiny")
    assert (folder / "unfinished" / "moex-seed0" / "fingerprint.json").exists()
    # a result of the contract, as a variant's folder would hold, inside `unfinished/` and its run's folder
    write_result("superposition", "moex", "tiny", 0, {"features_per_dim": 1.0}, {}, {}, {}, variant="unfinished")
    (folder / "unfinished" / "moex-seed0" / "moex.json").write_text((folder / "unfinished" / "moex.json").read_text())
    assert _variant_folders("superposition", "tiny") == []
    assert conflicts("superposition", "tiny") == {}
    assert rows("superposition", "tiny") == []
