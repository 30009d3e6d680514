"""Runs on the user's own data never touch what the committed data produced (core/own_data.py, bench/own_data.py):
results go to their own folder, nothing is trained into the committed checkpoints, and a dictionary
fitted on one data set is never reused for another."""

from pathlib import Path

import pytest

from bench import sae_store
from bench.own_data import refuse_own_data
from core import own_data
from core.errors import BenchError


class _Task:
    name = "chess"

    def __init__(self, folder):
        self.folder = folder

    def own_data(self):
        return self.folder


class _Adapter:
    name = "dense+sae"


@pytest.fixture
def data(tmp_path) -> Path:
    folder = tmp_path / "my-games"
    folder.mkdir()
    (folder / "train.txt.xz").write_bytes(b"games")
    return folder


def test_results_of_own_data_go_to_a_folder_named_after_it(data):
    assert own_data.variant_part(_Task(None)) is None
    name = own_data.variant_part(_Task(data))
    assert name.startswith("data.my-games-") and len(name) == len("data.my-games-") + 6
    other = data.parent / "elsewhere" / "my-games"             # same name, another folder: another summary
    other.mkdir(parents=True)
    assert own_data.variant_part(_Task(other)) != name
    odd = data.parent / "my gamés"
    odd.mkdir()
    assert own_data.variant_part(_Task(odd)).startswith("data.my_gam_s-")   # a plain name, whatever the folder's


def test_the_data_identity_changes_with_any_file(data):
    first = own_data.identity(_Task(data))
    assert first.startswith(f"{data.resolve()} sha256 ")
    (data / "train.txt.xz").write_bytes(b"other games")
    assert own_data.identity(_Task(data)) != first
    assert own_data.identity(_Task(None)) is None


def test_training_into_the_committed_checkpoints_is_refused_on_own_data_only(data, tmp_path, monkeypatch):
    monkeypatch.setattr(own_data, "COMMITTED_CHECKPOINTS", tmp_path / "checkpoints")
    inside = tmp_path / "checkpoints" / "chess" / "dense-cpu"
    with pytest.raises(BenchError, match=r"set MOEXBENCH_CHECKPOINTS=<a folder of its own>"):
        own_data.refuse_training_into_committed(_Task(data), inside, "dense")
    own_data.refuse_training_into_committed(_Task(None), inside, "dense")              # committed data: fine
    own_data.refuse_training_into_committed(_Task(data), tmp_path / "mine" / "dense-cpu", "dense")  # elsewhere


def test_a_dictionary_fitted_on_one_data_set_is_never_reused_for_another(data, tmp_path, monkeypatch):
    monkeypatch.setattr(own_data, "COMMITTED_CHECKPOINTS", tmp_path / "checkpoints")
    saved = {}
    monkeypatch.setattr(sae_store.st, "read_record", lambda folder: saved.get(folder))
    fits = []

    def fit_into(folder, record):
        def fit(why):
            fits.append(why)
            saved[folder] = dict(record)
        return fit

    cache, committed = tmp_path / "cache" / "sae", tmp_path / "checkpoints" / "chess" / "dense_sae"
    # Fitted on the committed data (no "data" in its record): read as it is on your data, like a model.
    saved[committed] = {"settings": 1}
    sae_store.refit_if_stale(committed, {"settings": 1}, _Adapter, _Task(data), "cpu", "SAE", fit_into(committed, {}))
    assert fits == []
    # A fit your data needs, in the cache: made, and it records the data.
    record = {"settings": 1}
    sae_store.refit_if_stale(cache, record, _Adapter, _Task(data), "cpu", "SAE", fit_into(cache, record))
    assert len(fits) == 1 and saved[cache]["data"] == own_data.identity(_Task(data))
    # The same run again reuses it; a run on the committed data refits instead of reusing it.
    sae_store.refit_if_stale(cache, {"settings": 1}, _Adapter, _Task(data), "cpu", "SAE", fit_into(cache, {}))
    assert len(fits) == 1
    committed_record = {"settings": 1}
    sae_store.refit_if_stale(cache, committed_record, _Adapter, _Task(None), "cpu", "SAE",
                             fit_into(cache, committed_record))
    assert len(fits) == 2 and "data" not in saved[cache]
    # A fit your data needs in the committed checkpoints (another setting there): refused.
    with pytest.raises(BenchError, match="beside the committed checkpoints"):
        sae_store.refit_if_stale(committed, {"settings": 2}, _Adapter, _Task(data), "cpu", "SAE",
                                 fit_into(committed, {}))


def test_commands_that_compare_with_the_committed_numbers_refuse_own_data(data, monkeypatch):
    from bench import registry

    monkeypatch.setattr(registry.task("chess"), "own_data", staticmethod(lambda: data))
    with pytest.raises(BenchError, match="make grid .* works on the committed data only"):
        refuse_own_data("chess", "make grid (the committed comparison's runs)")
    refuse_own_data("language", "make regress")       # the language data is the committed one here


def test_a_cached_fit_on_own_data_has_a_folder_of_its_own(data, monkeypatch):
    from types import SimpleNamespace

    task = _Task(data)
    adapter = SimpleNamespace(stem_name=lambda: "dense_sae-topk")
    committed_data = sae_store.fitted_folder(adapter, _Task(None), "cpu", 0, "random", True, "L1-mlp")
    own = sae_store.fitted_folder(adapter, task, "cpu", 0, "random", True, "L1-mlp")
    assert own != committed_data and own.name.startswith(committed_data.name + "-data.my-games-")
    # the trained model's dictionary at its default site stays beside its checkpoint, on either data
    assert sae_store.fitted_folder(adapter, task, "cpu", 0, "trained", True, "L1-mlp") == \
        sae_store.fitted_folder(adapter, _Task(None), "cpu", 0, "trained", True, "L1-mlp")


def test_the_report_on_own_data_adds_its_folder_to_the_variant_and_lists_the_others(data, monkeypatch, capsys):
    from bench.cli import main
    from core.results import result_dir, write_result

    monkeypatch.setattr("tasks.chess.corpus.EMBEDDED_DIR", data)  # as MOEXBENCH_CHESS_DATA sets it at import
    variant = f"layer.-1_{own_data.variant_for(data)}"             # where the bench writes ARGS=layer=-1 on it
    write_result("chess", "dense", "cpu", 0, {"coverage": 0.25}, {}, {}, {}, variant=variant)
    assert main(["report", "--task", "chess", "--preset", "cpu", "--variant", "layer.-1"]) == 0
    assert (result_dir("chess", "cpu", variant) / "summary.md").is_file()
    assert main(["report", "--task", "chess", "--preset", "cpu", "--variant", variant]) == 0  # its full name too
    assert main(["report", "--task", "chess", "--preset", "cpu"]) == 2   # nothing at the default layer on it
    assert capsys.readouterr().err.rstrip().endswith("choose VARIANT from: layer.-1")
