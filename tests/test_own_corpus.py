"""A researcher's own text as the language corpus (tasks/language/own_corpus.py): the folder it
writes is what the task reads, nothing is written over, and a checkpoint trained with another
tokenizer is refused instead of reading ids that mean other things."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import BenchError
from core.own_data import variant_for
from tasks.language import tokenizer as tokenizer_module
from tasks.language.corpus import EMBEDDED_DIR, read_records, read_split
from tasks.language.own_corpus import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def text_files(tmp_path_factory, monkeypatch) -> list[str]:
    """About 360,000 characters of real English, one document per file, named relative to the
    working directory, so that the documents' ids, and so the split, are the same on every run."""
    folder = tmp_path_factory.mktemp("texts")
    docs = read_split("train")[:400] + read_split("heldout")[:100]
    for i, text in enumerate(docs):
        (folder / f"doc{i:03d}.txt").write_text(text, encoding="utf-8")
    monkeypatch.chdir(folder)
    return [f"doc{i:03d}.txt" for i in range(len(docs))]


def test_files_become_train_and_heldout_splits_with_the_embedded_tokenizer(tmp_path, text_files):
    out = tmp_path / "corpus"
    assert main(["--out", str(out), "--files", *text_files[:60], "--heldout-percent", "40"]) == 0
    records = read_records("train", out) + read_records("heldout", out)
    assert sorted(r["id"] for r in records) == sorted(text_files[:60])          # each document once
    by_id = {r["id"]: r["text"] for r in records}
    assert all(by_id[p] == Path(p).read_text(encoding="utf-8") for p in text_files[:60])  # cwd: the files
    assert 0 < len(read_records("heldout", out)) < 60
    assert (out / "bpe-4096.json").read_bytes() == (EMBEDDED_DIR / "bpe-4096.json").read_bytes()
    assert sorted(p.name for p in out.iterdir()) == ["bpe-4096.json", "heldout.jsonl.xz", "train.jsonl.xz"]


def test_an_existing_folder_or_an_empty_split_is_refused_and_nothing_is_written(tmp_path, text_files, capsys):
    existing = tmp_path / "mine"
    existing.mkdir()
    (existing / "notes.txt").write_text("keep me")
    assert main(["--out", str(existing), "--files", *text_files[:60]]) == 2
    assert [p.name for p in existing.iterdir()] == ["notes.txt"]
    assert main(["--out", str(tmp_path / "one"), "--files", text_files[0]]) == 2
    assert "split empty" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]               # no folder, no temporary left
    assert main(["--out", str(tmp_path / "twice"), "--files", text_files[0], text_files[0]]) == 2  # one distinct
    capsys.readouterr()
    assert main(["--out", str(tmp_path / "no" / "parent"), "--files", *text_files[:60]]) == 2
    assert "is not a folder; create it first" in capsys.readouterr().err
    assert main(["--out", str(tmp_path / "size"), "--files", *text_files[:60], "--bpe-vocab", "300"]) == 2
    assert "--bpe-vocab goes with --bpe-only" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


def test_a_text_repeated_under_another_name_is_kept_once(tmp_path, text_files):
    Path("copy.txt").write_text(Path(text_files[3]).read_text(encoding="utf-8"), encoding="utf-8")
    out = tmp_path / "corpus"
    assert main(["--out", str(out), "--files", *text_files[:60], "copy.txt", "--heldout-percent", "40"]) == 0
    texts = read_split("train", out) + read_split("heldout", out)
    assert len(texts) == 60 and len(set(texts)) == 60


def test_bpe_only_adds_a_tokenizer_and_never_replaces_one(tmp_path, text_files):
    out = tmp_path / "corpus"
    assert main(["--out", str(out), "--files", *text_files[:60], "--heldout-percent", "40"]) == 0
    assert main(["--out", str(out), "--bpe-only", "--bpe-vocab", "300"]) == 0
    assert json.loads((out / "bpe-300.json").read_text())["model"]["type"] == "BPE"
    before = (out / "bpe-4096.json").read_bytes()
    assert main(["--out", str(out), "--bpe-only"]) == 2
    assert (out / "bpe-4096.json").read_bytes() == before


def test_a_checkpoint_is_refused_under_a_tokenizer_it_was_not_trained_with(tmp_path, text_files, monkeypatch):
    from bench import model_store, registry
    from models.checkpoint import save_model
    from models.gpt import GPT
    from tasks.language.task import LanguageTask

    # A checkpoint that records no format, as every committed language checkpoint: the embedded tokenizer's.
    monkeypatch.setattr("core.paths.CHECKPOINTS", tmp_path / "ckpt")
    save_model(tmp_path / "ckpt" / "language" / "dense-tiny", GPT(LanguageTask.dense_config("tiny")), {"fingerprint": {}})
    dense = registry.model_adapter("dense")
    model_store.load_or_train(dense, LanguageTask, "tiny", 0, "cpu", train_if_missing=False)  # same tokenizer: loads

    trained = tmp_path / "trained"
    assert main(["--out", str(trained), "--files", *text_files[:60], "--heldout-percent", "40", "--train-bpe"]) == 0
    monkeypatch.setattr(tokenizer_module, "DATA_DIR", trained)
    tokenizer_module.load_tokenizer.cache_clear()
    try:
        embedded = re.escape(LanguageTask.untagged_format("tiny"))
        with pytest.raises(BenchError, match=rf"trained in the '{embedded}' token format, but preset tiny reads "
                                             r"'bpe-4096 sha256 [0-9a-f]{12}' now; .*copy data/language/bpe-4096.json "
                                             r"there") as refused:
            model_store.load_or_train(dense, LanguageTask, "tiny", 0, "cpu", train_if_missing=False)
        assert "delete" not in str(refused.value)  # the checkpoint is the committed one's place: never deleted
    finally:
        tokenizer_module.load_tokenizer.cache_clear()


def test_the_language_task_runs_end_to_end_on_your_own_text(tmp_path, text_files):
    out = tmp_path / "corpus"
    assert main(["--out", str(out), "--files", *text_files, "--heldout-percent", "40"]) == 0
    env = {**os.environ, "MOEXBENCH_LANGUAGE_DATA": str(out), "MOEXBENCH_RESULTS": str(tmp_path / "results"),
           "MOEXBENCH_CHECKPOINTS": str(tmp_path / "ckpt"), "MOEXBENCH_RUNS": str(tmp_path / "runs"),
           "MOEXBENCH_CACHE": str(tmp_path / "cache"), "CI": "true"}
    run = subprocess.run([sys.executable, "-m", "bench", "bench", "--task", "language", "--model", "dense",
                          "--preset", "tiny", "--threads", "1", "negatives=weakest", "n_features=64"], cwd=ROOT,
                         env={**env, "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads((tmp_path / "results" / "language" / "tiny" / variant_for(out) / "dense.json").read_text())
    assert result["provenance"]["deviations"][0].startswith(f"text: the corpus in {out.resolve()} (MOEXBENCH_LANGUAGE_DATA)")
    assert result["metrics"]["perplexity"] > 1
