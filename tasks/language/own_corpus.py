"""Your own text as the language task's corpus, in a new folder: documents from UTF-8 text files or a
local Hugging Face data set, split by document into `train` and `heldout` as the embedded corpus is,
with the `bpe-4096` tokenizer that the `tiny` and `cpu` presets read.

    python -m tasks.language.own_corpus --out my-corpus --files notes/*.txt
    python -m tasks.language.own_corpus --out my-corpus --hf-dataset data/fineweb-sample --split train
    MOEXBENCH_LANGUAGE_DATA=my-corpus make bench TASK=language MODEL=dense PRESET=cpu

The tokenizer is by default the embedded corpus's own, copied, so the committed checkpoints read
your text with the ids they were trained on. `--train-bpe` trains one on your train split instead;
checkpoints trained with another tokenizer are then refused (their ids mean other things), so train
models for it into a folder of their own (`MOEXBENCH_CHECKPOINTS=<folder>`). `--bpe-only` adds a BPE
of another size to an existing folder, trained on its train split. Results on your text go to
`results/language/data.<folder name>-<6 hex>/` (core/own_data.py).

A document whose text repeats an earlier one's is dropped (it could sit in both splits). A document
is held out when sha256(seed, its id) falls in the lowest `--heldout-percent` (the id is the file's
path as given, or `<data set>:<n>`), the embedded corpus's rule. The folder is written whole or not
at all (core/new_folder.py): an existing one is refused (with `--bpe-only`, an existing tokenizer
file), so nothing of yours is overwritten. The `cpu` preset reads about 590,000 held-out tokens (some 2M
characters of English); a smaller held-out split stops its run with a message saying so.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from core.arguments import OneLineParser
from core.errors import NOTHING_WRITTEN, BenchError, run_command
from core.new_folder import check_new, write_new_folder
from core.own_data import variant_for
from tasks.language.build_corpus import HELDOUT_PERCENT, SEED, is_heldout, write_text
from tasks.language.corpus import EMBEDDED_DIR, SPLIT_FILES, load_hf_dataset, load_text_files, read_split, write_split

BPE_VOCAB = 4096  # the tiny and cpu presets' tokenizer, bpe-4096


def documents(files: list[str] | None, dataset: str | None, split: str, text_field: str) -> list[tuple[str, str]]:
    """(id, text) per document, in the order given: a file's path, or `<data set>:<n>` counting the
    data set's non-empty texts."""
    if files:
        return list(zip(files, load_text_files(files)))
    texts = load_hf_dataset(dataset, split, text_field)
    return [(f"{dataset}:{n}", text) for n, text in enumerate(texts)]


def distinct(docs: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], int]:
    """The first document of each text, and how many repeats were dropped: a text in both splits
    would flatter the held-out perplexity."""
    seen, kept = set(), []
    for doc_id, text in docs:
        if text not in seen:
            seen.add(text)
            kept.append((doc_id, text))
    return kept, len(docs) - len(kept)


def split_documents(docs: list[tuple[str, str]], seed: int, percent: float, source: str) -> dict[str, list[dict]]:
    splits = {"train": [], "heldout": []}
    for doc_id, text in docs:
        name = "heldout" if is_heldout(doc_id, seed, percent) else "train"
        splits[name].append({"id": doc_id, "source": source, "text": text})
    empty = [name for name, records in splits.items() if not records]
    if empty:
        raise BenchError(f"{len(docs)} distinct document(s) leave the {' and '.join(empty)} split empty at "
                         f"--heldout-percent {percent:g}; give more documents (split long texts into several "
                         f"files) or change --heldout-percent")
    return splits


def build(out: Path, splits: dict[str, list[dict]], train_bpe: bool) -> str:
    """Writes the splits and the tokenizer (the embedded one, or a BPE trained on the train split)
    as a new folder; returns the tokenizer file's name."""
    from tasks.language.tokenizer import train_bpe as trained_bpe

    bpe = f"bpe-{BPE_VOCAB}.json"

    def fill(folder: Path) -> None:
        for name, records in splits.items():
            write_split(folder / SPLIT_FILES[name], records)
        if train_bpe:
            write_text(folder / bpe, trained_bpe([r["text"] for r in splits["train"]], BPE_VOCAB))
        else:
            shutil.copyfile(EMBEDDED_DIR / bpe, folder / bpe)

    write_new_folder(out, fill)
    return bpe


def bpe_only(out: Path, bpe_vocab: int) -> Path:
    from tasks.language.tokenizer import train_bpe

    path = out / f"bpe-{bpe_vocab}.json"
    if path.exists():
        raise BenchError(f"{path} exists; delete it to train it again")
    write_text(path, train_bpe(read_split("train", out), bpe_vocab))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="a new folder for the corpus")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--files", nargs="+", help="UTF-8 text files, one document each")
    source.add_argument("--hf-dataset", help="a local Hugging Face data set (file or folder)")
    source.add_argument("--bpe-only", action="store_true", help="train another BPE on --out's train split")
    parser.add_argument("--split", default="train", help="the data set's split to read")
    parser.add_argument("--text-field", default="text", help="the data set's text column")
    parser.add_argument("--heldout-percent", type=float, default=HELDOUT_PERCENT)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--train-bpe", action="store_true",
                        help=f"train bpe-{BPE_VOCAB} on your train split instead of copying the embedded one")
    parser.add_argument("--bpe-vocab", type=int, default=BPE_VOCAB, help="with --bpe-only: the new BPE's size")
    args = parser.parse_args(argv)

    def body():
        if args.bpe_only:
            print(f"wrote {bpe_only(args.out, args.bpe_vocab)}")
            return
        if args.bpe_vocab != BPE_VOCAB:
            raise BenchError(f"--bpe-vocab goes with --bpe-only: the presets read bpe-{BPE_VOCAB}, which a new "
                             f"corpus gets; add another size afterwards with --bpe-only")
        check_new(args.out)
        if not 0 < args.heldout_percent < 100:
            raise BenchError(f"--heldout-percent {args.heldout_percent:g} must be between 0 and 100")
        docs, repeats = distinct(documents(args.files, args.hf_dataset, args.split, args.text_field))
        splits = split_documents(docs, args.seed, args.heldout_percent, "files" if args.files else args.hf_dataset)
        bpe = build(args.out, splits, args.train_bpe)
        for name, records in splits.items():
            print(f"{args.out / SPLIT_FILES[name]}: {len(records)} documents, "
                  f"{sum(len(r['text']) for r in records):,} characters")
        if repeats:
            print(f"dropped {repeats} document(s) repeating an earlier one's text")
        print(f"{args.out / bpe}: " + ("trained on your train split: train models for it into their own folder "
                                       "(MOEXBENCH_CHECKPOINTS=<folder>)" if args.train_bpe else
                                       "the embedded corpus's tokenizer, which the committed checkpoints read"))
        print(f"use it: MOEXBENCH_LANGUAGE_DATA={args.out} make bench TASK=language MODEL=dense PRESET=cpu "
              f"(results in results/language/{variant_for(args.out)}/)")

    return run_command(body, on_interrupt=NOTHING_WRITTEN)


if __name__ == "__main__":
    sys.exit(main())
