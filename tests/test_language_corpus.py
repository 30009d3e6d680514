import hashlib
import json
import lzma
from pathlib import Path

import pytest

from core.errors import BenchError
from tasks.language.build_corpus import clean_rest, clean_verses, is_heldout, subsample, tidy
from tasks.language.corpus import DATA_DIR, SPLIT_FILES, load_hf_dataset, load_text_files, read_records, read_split


def test_splits_are_non_empty_and_disjoint_by_document_and_by_text():
    train, heldout = read_records("train"), read_records("heldout")
    assert len(train) > 10_000 and len(heldout) > 500
    assert not {r["id"] for r in train} & {r["id"] for r in heldout}
    assert not {r["text"] for r in train} & {r["text"] for r in heldout}
    assert {r["source"] for r in heldout} == {"python-docs", "kernel-docs", "kjv", "fortunes"}
    assert read_split("heldout") == [r["text"] for r in heldout]
    assert all(text.strip() for text in read_split("heldout"))


def test_committed_files_match_the_card():
    """A hand edit of a committed file, or of its card, is caught here."""
    card = json.loads((DATA_DIR / "card.json").read_text())
    card_md = (DATA_DIR / "CARD.md").read_text()
    assert set(card["files"]) == {*SPLIT_FILES.values(), "bpe-4096.json"}
    for name, entry in card["files"].items():
        data = (DATA_DIR / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], name
        assert len(data) == entry["bytes"] and f"`{entry['sha256']}`" in card_md
    assert sum(f["bytes"] for f in card["files"].values()) < 5_000_000
    for name, split in (("train.jsonl.xz", "train"), ("heldout.jsonl.xz", "heldout")):
        texts = read_split(split)
        assert len(texts) == card["files"][name]["documents"]
        assert sum(map(len, texts)) == card["files"][name]["characters"]


def test_unknown_split_and_missing_files_name_the_fix(tmp_path):
    with pytest.raises(BenchError, match=r"unknown language split 'test'; choose one of train, heldout"):
        read_split("test")
    with pytest.raises(BenchError, match=r"train\.jsonl\.xz is missing; run `make language-data`"):
        read_split("train", data_dir=tmp_path)


def test_a_data_folder_of_ones_own(tmp_path):
    from tasks.language.corpus import write_split

    write_split(tmp_path / "heldout.jsonl.xz", [{"id": "a", "source": "mine", "text": "Ünïcode\nline two"}])
    assert read_split("heldout", data_dir=tmp_path) == ["Ünïcode\nline two"]
    with lzma.open(tmp_path / "heldout.jsonl.xz", "rt", encoding="utf-8") as f:
        assert f.read() == '{"id": "a", "source": "mine", "text": "Ünïcode\\nline two"}\n'


def test_text_files_one_document_each(tmp_path):
    (tmp_path / "a.txt").write_text("first document\n", encoding="utf-8")
    (tmp_path / "b.txt").write_bytes("\ufeffsecond – with a BOM".encode("utf-8"))
    docs = load_text_files([tmp_path / "a.txt", tmp_path / "b.txt"])
    assert docs == ["first document\n", "second – with a BOM"]


def test_bad_text_files_give_one_line_naming_the_file(tmp_path):
    (tmp_path / "empty.txt").write_text("  \n")
    (tmp_path / "latin1.txt").write_bytes("caf".encode() + "é".encode("latin-1") + b" ok")
    with pytest.raises(BenchError, match=r"empty\.txt is empty") as e:
        load_text_files([tmp_path / "empty.txt"])
    assert "\n" not in str(e.value)
    with pytest.raises(BenchError, match=r"latin1\.txt is not UTF-8 text \(invalid continuation byte at byte 3\)"):
        load_text_files([tmp_path / "latin1.txt"])
    with pytest.raises(BenchError, match=r"nothere\.txt does not exist"):
        load_text_files([tmp_path / "nothere.txt"])


def test_local_hugging_face_files(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": ["one doc", "", "two doc"], "id": [1, 2, 3]}), tmp_path / "wiki.parquet")
    assert load_hf_dataset(str(tmp_path / "wiki.parquet"), "validation") == ["one doc", "two doc"]
    (tmp_path / "owt.jsonl").write_text('{"content": "alpha"}\n{"content": "beta"}\n')
    assert load_hf_dataset(str(tmp_path / "owt.jsonl"), "train", text_field="content") == ["alpha", "beta"]
    with pytest.raises(BenchError, match=r"has no column 'text'; its columns are content"):
        load_hf_dataset(str(tmp_path / "owt.jsonl"), "train")
    folder = tmp_path / "fineweb" / "data"
    folder.mkdir(parents=True)
    pq.write_table(pa.table({"text": ["web page"]}), folder / "train-00000-of-00001.parquet")
    assert load_hf_dataset(str(tmp_path / "fineweb"), "train") == ["web page"]
    import datasets

    assert datasets.config.HF_HUB_OFFLINE  # forced, even though datasets was imported first


def test_saved_hugging_face_dataset_dict(tmp_path):
    import datasets

    datasets.DatasetDict({"test": datasets.Dataset.from_dict({"text": ["x y z"]})}).save_to_disk(tmp_path / "dd")
    assert load_hf_dataset(str(tmp_path / "dd"), "test") == ["x y z"]
    with pytest.raises(BenchError, match=r"has no split 'train'; it has test"):
        load_hf_dataset(str(tmp_path / "dd"), "train")


def test_absent_dataset_path_is_one_clear_line(tmp_path):
    with pytest.raises(BenchError, match=r"HuggingFaceFW/fineweb does not exist; give a local file or folder"):
        load_hf_dataset("HuggingFaceFW/fineweb", "train")


def test_rest_cleaning_worked_by_hand():
    source = """.. SPDX-License-Identifier: GPL-2.0

:mod:`json` --- JSON
====================

.. module:: json
   :synopsis: Encode and decode.

.. index::
   single: JSON

See :func:`~json.dumps`, :rfc:`7159` and `the site <https://json.org>`_ for
``dumps(obj,
indent=4)`` [#note]_.

.. function:: dumps(obj)

   Serialize **obj**.

   .. versionadded:: 3.2

Example::

    >>> print('\\\\')
    "\\\\"

+-----+-----+
| a   | b   |
+=====+=====+
"""
    assert clean_rest(source) == """json --- JSON

See dumps, RFC 7159 and the site for
dumps(obj,
indent=4).

dumps(obj)

   Serialize obj.

   New in version 3.2.

Example:

    >>> print('\\\\')
    "\\\\"

| a   | b   |"""


def test_verses_and_common_tidying():
    assert clean_verses("Ge1:1 In the beginning.\nGe1:2 And the earth.") == "In the beginning.\nAnd the earth."
    assert tidy("\r\nbo_\x08ld  \n\n\n\nend\x0c") == "bold\n\nend"


def test_heldout_is_the_set_percentage_and_stable():
    ids = [f"doc{i}" for i in range(10_000)]
    held = [i for i in ids if is_heldout(i, percent=5.0)]
    assert 400 <= len(held) <= 600  # binomial(10000, 0.05): 500 +- 22
    assert 1100 <= sum(is_heldout(i, percent=12.0) for i in ids) <= 1300  # binomial(10000, 0.12): 1200 +- 32
    held = [i for i in ids if is_heldout(i)]
    assert held == [i for i in ids if is_heldout(i)] and held != [i for i in ids if is_heldout(i, seed=1)]


def test_subsample_keeps_a_seeded_set_within_the_budget():
    docs = [(f"d{i}", "x" * (10 + i)) for i in range(50)]
    kept = subsample(docs, 200)
    assert sum(len(t) for _, t in kept) <= 200 and len(kept) >= 5
    assert kept == subsample(list(reversed(docs)), 200)  # the order of listing does not matter
    assert {d for d, _ in subsample(docs, 10**6)} == {d for d, _ in docs}


def test_the_card_names_sources_licences_and_the_command():
    card = json.loads((Path(DATA_DIR) / "card.json").read_text())
    assert card["command"] == "python -m tasks.language.build_corpus"
    for source in card["sources"]:
        assert source["licence"] and source["version"] != "unknown"
        assert source["characters_kept"] <= source["max_chars"]
        assert source["documents_kept"] <= source["documents_clean"] <= source["raw_documents"]


def test_without_the_debian_packages_a_non_root_user_gets_the_apt_command(tmp_path, monkeypatch, capsys):
    import dataclasses

    from tasks.language import build_corpus

    absent = tuple(dataclasses.replace(s, needs=tmp_path / "absent") for s in build_corpus.SOURCES)
    monkeypatch.setattr(build_corpus, "SOURCES", absent)
    monkeypatch.setattr(build_corpus.os, "geteuid", lambda: 1000)
    assert build_corpus.main(["--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: need Debian packages python3.11-doc, linux-doc-6.1")
    assert "sudo apt-get install -y -qq --no-install-recommends python3.11-doc" in err
    assert not (tmp_path / "out").exists()


def test_an_unreadable_data_file_names_the_file(tmp_path):
    (tmp_path / "broken.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(BenchError, match=r"broken\.parquet could not be read as parquet: "):
        load_hf_dataset(str(tmp_path / "broken.parquet"), "train")
    (tmp_path / "notes.docx").write_bytes(b"x")
    with pytest.raises(BenchError, match=r"notes\.docx: unknown data file type '\.docx'"):
        load_hf_dataset(str(tmp_path / "notes.docx"), "train")
