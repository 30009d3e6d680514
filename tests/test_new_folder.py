"""A folder written whole or not at all, never over another (core/new_folder.py)."""

import pytest

from core.errors import BenchError
from core.new_folder import rename_no_replace, write_new_folder


def _fill(folder):
    (folder / "a.txt").write_text("a\n")


def test_the_folder_appears_whole_and_no_hidden_folder_is_left(tmp_path):
    write_new_folder(tmp_path / "out", _fill)
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert (tmp_path / "out" / "a.txt").read_text() == "a\n"


def test_a_failing_fill_leaves_nothing(tmp_path):
    def fail(folder):
        _fill(folder)
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_new_folder(tmp_path / "out", fail)
    assert list(tmp_path.iterdir()) == []


def test_an_empty_folder_made_meanwhile_is_not_replaced(tmp_path):
    out = tmp_path / "out"

    def fill_while_someone_makes_it(folder):  # the race a plain rename loses: it replaces empty folders
        _fill(folder)
        out.mkdir()
        (tmp_path / "marker").write_text(str(out.stat().st_ino))

    with pytest.raises(BenchError, match="appeared while it was being written"):
        write_new_folder(out, fill_while_someone_makes_it)
    assert list(out.iterdir()) == [] and str(out.stat().st_ino) == (tmp_path / "marker").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["marker", "out"]


def test_rename_no_replace_refuses_an_existing_file(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "dst").write_text("mine")
    with pytest.raises(FileExistsError):
        rename_no_replace(tmp_path / "src", tmp_path / "dst")
    assert (tmp_path / "dst").read_text() == "mine" and (tmp_path / "src").is_dir()


def test_rename_no_replace_refuses_an_existing_empty_folder_which_a_plain_rename_replaces(tmp_path):
    import os

    for name in ("src", "dst", "plain-src", "plain-dst"):
        (tmp_path / name).mkdir()
    (tmp_path / "src" / "f").write_text("x")
    (tmp_path / "plain-src" / "f").write_text("x")
    os.rename(tmp_path / "plain-src", tmp_path / "plain-dst")  # the control: the empty folder is replaced
    assert (tmp_path / "plain-dst" / "f").exists()
    with pytest.raises(FileExistsError):
        rename_no_replace(tmp_path / "src", tmp_path / "dst")
    assert list((tmp_path / "dst").iterdir()) == [] and (tmp_path / "src" / "f").exists()
