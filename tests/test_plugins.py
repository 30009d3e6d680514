"""Adding a task and a model: a class each in a test-only module plus one registry line each, then
`make bench`'s own code path trains, evaluates, writes and reports them."""

import json

from bench import cli, registry
from core.results import result_path


def test_a_new_task_and_model_run_through_the_bench_command(monkeypatch, capsys):
    monkeypatch.setitem(registry.TASKS, "toy", "tests.toy_plugins:ToyTask")
    monkeypatch.setitem(registry.MODELS, "toy-relu", "tests.toy_plugins:ToyReluAdapter")
    assert cli.main(["bench", "--task", "toy", "--model", "toy-relu", "--preset", "tiny", "--threads", "1"]) == 0
    path = result_path("toy", "toy-relu", "tiny", 0)
    record = json.loads(path.read_text())
    assert record["task"] == "toy" and record["provenance"]["feature_kind"] == "toy ReLU neurons"
    assert 0 <= record["metrics"]["features_firing"] <= 32   # a count of the 32 ReLU units
    assert (path.parent / "summary.md").exists()
    assert f"wrote {path}" in capsys.readouterr().out
    # a preset the task does not define is refused by name
    assert cli.main(["bench", "--task", "toy", "--model", "toy-relu", "--preset", "cpu"]) == 2
