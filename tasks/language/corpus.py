"""Text for the language task: the embedded English corpus, a user's own text files, or a Hugging
Face data set the user has on disk (docs/language.md section 2).

Every loader returns documents as a list of strings; a tokenizer joins them with its document
separator. Bad input is never skipped silently: a loader raises one line naming the file.
"""

from __future__ import annotations

import json
import lzma
import os
from pathlib import Path

from core.errors import BenchError

EMBEDDED_DIR = Path(__file__).resolve().parents[2] / "data" / "language"
DATA_DIR = Path(os.environ.get("MOEXBENCH_LANGUAGE_DATA", EMBEDDED_DIR))
SPLIT_FILES = {"train": "train.jsonl.xz", "heldout": "heldout.jsonl.xz"}


def write_split(path: Path, records: list[dict]) -> None:
    """One JSON object per line, xz-compressed, written atomically (temp file + rename). xz stores
    no timestamp, so equal records give equal bytes."""
    tmp = path.with_name(path.name + ".tmp")
    with lzma.open(tmp, "wt", encoding="utf-8", preset=9 | lzma.PRESET_EXTREME) as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
    os.replace(tmp, path)


def read_records(split: str, data_dir: Path | None = None) -> list[dict]:
    """The embedded split's documents with their ids and sources (`{"id", "source", "text"}`)."""
    if split not in SPLIT_FILES:
        raise BenchError(f"unknown language split {split!r}; choose one of {', '.join(SPLIT_FILES)}")
    path = Path(data_dir or DATA_DIR) / SPLIT_FILES[split]
    if not path.exists():
        raise BenchError(f"language corpus file {path} is missing; run `make language-data` "
                         f"(python -m tasks.language.build_corpus) or set MOEXBENCH_LANGUAGE_DATA")
    try:
        with lzma.open(path, "rt", encoding="utf-8") as f:
            records = []
            for number, line in enumerate(f, start=1):
                if line.strip():
                    record = json.loads(line)
                    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                        raise BenchError(f"{path} line {number} has no \"text\" string; each line must be "
                                         f"{{\"id\", \"source\", \"text\"}}: rebuild it with `make language-data`")
                    records.append(record)
            return records
    except (lzma.LZMAError, EOFError, UnicodeDecodeError) as e:
        raise BenchError(f"{path} is not a readable xz file of UTF-8 JSON lines ({e}); rebuild it with "
                         f"`make language-data`") from None
    except json.JSONDecodeError as e:
        raise BenchError(f"{path} line {number} is not JSON ({e.msg}); rebuild it with `make language-data`") from None


def read_split(split: str, data_dir: Path | None = None) -> list[str]:
    """Documents of the embedded `train` or `heldout` split."""
    return [r["text"] for r in read_records(split, data_dir)]


def load_text_files(paths) -> list[str]:
    """A user's own UTF-8 text files, one document per file, in the order given."""
    docs = []
    for path in map(Path, paths):
        if path.is_dir():
            raise BenchError(f"{path} is a directory; give the text files in it, e.g. {path}/*.txt")
        if not path.is_file():
            raise BenchError(f"text file {path} does not exist")
        data = path.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise BenchError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start}); convert it, "
                             f"e.g. iconv -f latin1 -t utf-8") from None
        # The byte-order mark comes off before the emptiness check: a file of only a BOM is empty.
        text = text.removeprefix("\ufeff")
        if not text.strip():
            raise BenchError(f"{path} is empty; remove it from the list or give it text")
        docs.append(text)
    if not docs:
        raise BenchError("no text files given")
    return docs


def load_hf_dataset(path: str, split: str, text_field: str = "text") -> list[str]:
    """A Hugging Face data set from local files only (parquet, arrow, json/jsonl, csv, txt, or a
    folder saved by `save_to_disk` or holding such files): FineWeb, OpenWebText, WikiText and the
    like once a user has them. Offline mode is forced, so a hub name fails here instead of reaching
    for the network."""
    local = Path(path)
    if not local.exists():
        raise BenchError(f"data set path {path} does not exist; give a local file or folder "
                         f"(hub names cannot be fetched offline)")
    ds = _load_local(local, split)
    if text_field not in ds.column_names:
        raise BenchError(f"data set {path} has no column {text_field!r}; its columns are "
                         f"{', '.join(ds.column_names)} (pass text_field=...)")
    docs = [t for t in ds[text_field] if isinstance(t, str) and t.strip()]
    if not docs:
        raise BenchError(f"data set {path} split {split!r} has no non-empty {text_field!r} values")
    return docs


_BUILDERS = {".parquet": "parquet", ".arrow": "arrow", ".json": "json", ".jsonl": "json", ".csv": "csv",
             ".txt": "text"}


def _load_local(local: Path, split: str):
    os.environ["HF_HUB_OFFLINE"] = os.environ["HF_DATASETS_OFFLINE"] = "1"
    import datasets
    import huggingface_hub.constants

    from core.paths import CACHE

    # The environment is read when the libraries are first imported; SAELens may have imported them.
    datasets.config.HF_HUB_OFFLINE = huggingface_hub.constants.HF_HUB_OFFLINE = True

    cache_dir = str(CACHE / "hf-datasets")  # datasets converts files to arrow there
    if local.is_dir() and any((local / f).exists() for f in ("dataset_info.json", "dataset_dict.json")):
        ds = datasets.load_from_disk(str(local))
        if isinstance(ds, datasets.DatasetDict):
            if split not in ds:
                raise BenchError(f"data set {local} has no split {split!r}; it has {', '.join(ds)}")
            ds = ds[split]
        return ds
    if local.is_file():
        suffix = local.suffix if local.suffix != ".gz" else Path(local.stem).suffix
        if suffix not in _BUILDERS:
            raise BenchError(f"{local}: unknown data file type {suffix!r}; use one of {', '.join(_BUILDERS)}")
        try:
            return datasets.load_dataset(_BUILDERS[suffix], data_files={split: str(local)}, split=split,
                                         cache_dir=cache_dir)
        except Exception as e:  # datasets raises many types; the user needs the file and the reason
            raise BenchError(f"{local} could not be read as {_BUILDERS[suffix]}: {_first_line(e)}") from None
    try:
        ds = datasets.load_dataset(str(local), cache_dir=cache_dir)
    except Exception as e:
        raise BenchError(f"{local} could not be read as a data set folder: {_first_line(e)}") from None
    if split not in ds:
        raise BenchError(f"data set {local} has no split {split!r}; it has {', '.join(ds)}")
    return ds[split]


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
