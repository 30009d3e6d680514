"""Builds the embedded English corpus and the small BPE tokenizers (docs/language.md section 2).

`python -m tasks.language.build_corpus` (`make language-data`) reads four Debian packages that install
offline (the Python and Linux kernel documentation as reST sources, the King James Bible, the
non-offensive fortunes), turns them into plain-text documents, keeps a seeded subsample of each
source within a character budget, splits by document into `train` and `heldout`, writes
`data/language/{train,heldout}.jsonl.xz`, trains `bpe-<vocab>.json` on the train split, and writes
CARD.md and card.json. Every choice is a hash of (seed, document id), never the order files are
listed in, so a second run gives byte-identical files (given the same package versions).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from core.arguments import OneLineParser
from core.errors import FILES_WHOLE, BenchError, run_command
from tasks.language.corpus import EMBEDDED_DIR, SPLIT_FILES, write_split

PY_DOCS = Path("/usr/share/doc/python3.11/html/_sources")
KERNEL_DOCS = Path("/usr/share/doc/linux-doc-6.1/Documentation")
BIBLE = Path("/usr/bin/bible")
FORTUNES = Path("/usr/share/games/fortunes")

HELDOUT_PERCENT = 12.0      # of documents, chosen by hash: enough for the cpu preset's 2,304 held-out windows
MIN_CHARS = 20              # documents shorter than this after cleaning are dropped
BPE_VOCABS = (4096,)
SEED = 0


@dataclass(frozen=True)
class Source:
    name: str
    package: str            # the Debian package whose version the card records
    licence: str
    max_chars: int          # budget of kept characters (the committed files stay under about 5 MB)
    needs: Path             # present once the package is installed
    read: Callable[[], Iterator[tuple[str, str]]]  # (document id, raw text), in a fixed order
    clean: Callable[[str], str]


# ----------------------------------------------------------------------------------------------
# Cleaning. Cheap, line-based and honest: markup that only steers Sphinx goes, the prose and the
# code examples stay. Nothing tries to render tables or resolve references.

_DROPPED_DIRECTIVES = {
    "index", "toctree", "highlight", "module", "currentmodule", "moduleauthor", "sectionauthor",
    "kernel-doc", "include", "literalinclude", "image", "figure", "raw", "only", "contents",
    "tabularcolumns", "cssclass", "rst-class", "role", "default-role", "c:namespace",
    "c:namespace-push", "c:namespace-pop", "testsetup", "testcleanup", "productionlist",
    "audit-event", "csv-table", "flat-table", "kernel-feat", "kernel-abi", "kernel-include",
    "maintainers-include", "spelling", "autosummary", "miscnews", "kernel-figure", "kernel-render",
    "graphviz", "sectnum", "list-table", "raw-latex", "raw-html", "program",
}
_VERSION_DIRECTIVES = {"versionadded": "New in version {}.", "versionchanged": "Changed in version {}.",
                       "deprecated": "Deprecated since version {}.",
                       "deprecated-removed": "Deprecated since version {}."}
_MARKUP_START = re.compile(r"^(\s*)\.\.(?:\s+(.*))?$")
_DIRECTIVE = re.compile(r"^([\w:+-]+)::\s*(.*)$")
_OPTION = re.compile(r"^\s+:[\w -]+:(\s.*)?$")
# Section under/overlines (one punctuation character repeated) and grid or simple table borders.
_RULE = re.compile(r"^\s*(?:([=\-~^*+#`'\"_:.<>])\1{2,}|\+[-=+]+\+|=+(?: +=+)+)\s*$")
_ROLE = re.compile(r":([\w:+.-]+):`([^`]+)`")
_LINK = re.compile(r"`([^`<]+?)\s*<[^>`]*>`_{1,2}")
_REF = re.compile(r"`([^`]+)`_{1,2}(?!\w)")
_LITERAL = re.compile(r"``((?:(?!\n\s*\n).)+?)``", re.S)  # never across a blank line
_BOLD = re.compile(r"\*\*(\S[^*\n]*?)\*\*")
_FOOTNOTE_REF = re.compile(r"\s?\[(?:#[\w-]*|\d+)\]_")


_NUMBERED_ROLES = {"rfc": "RFC", "pep": "PEP", "cve": "CVE", "cwe": "CWE"}
_CODE_DIRECTIVES = {"code-block", "sourcecode", "code", "highlight", "doctest", "testcode", "testoutput"}


def _role_text(m: re.Match) -> str:
    role, text = m.group(1), m.group(2)
    if role in _NUMBERED_ROLES:
        return f"{_NUMBERED_ROLES[role]} {text}"
    target = re.match(r"^(.*?)\s*<[^>]*>$", text, re.S)
    if target and target.group(1):
        return target.group(1)
    text = text.lstrip("!")
    return text[1:].rsplit(".", 1)[-1] if text.startswith("~") else text


def clean_inline(text: str) -> str:
    """Roles, links and literals become their text. Run on whole paragraphs: reST lets inline
    markup run across a line break."""
    text = _ROLE.sub(_role_text, text)
    text = _LINK.sub(r"\1", text)
    text = _LITERAL.sub(r"\1", text)
    text = _REF.sub(r"\1", text)
    text = _BOLD.sub(r"\1", text)
    return _FOOTNOTE_REF.sub("", text)


def _literal_marker(line: str) -> str:
    """"Example::" introduces a code block; Sphinx shows it as "Example:" (and drops a lone "::")."""
    if not line.rstrip().endswith("::"):
        return line
    stripped = line.rstrip()[:-2]
    return stripped + ":" if stripped.strip() and not stripped.endswith(" ") else stripped.rstrip()


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def clean_rest(text: str) -> str:
    """reST source -> readable text: directives that steer Sphinx (and comments) are dropped with
    their indented bodies, other directive markers become their argument, section underlines and
    table borders go, inline roles and links become their text."""
    out: list[str] = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        m = _MARKUP_START.match(line)
        if not m:
            if not _RULE.match(line) or not line.strip():
                out.append(_literal_marker(line))
            i += 1
            continue
        indent, rest = len(m.group(1)), (m.group(2) or "").strip()
        directive = _DIRECTIVE.match(rest)
        drop_body = False
        if directive:
            name, arg = directive.group(1), directive.group(2).strip()
            if name in _DROPPED_DIRECTIVES:
                drop_body = True
            elif name in _VERSION_DIRECTIVES:
                out.append(" " * indent + _VERSION_DIRECTIVES[name].format(arg.split()[0] if arg else "?"))
            elif arg and name not in _CODE_DIRECTIVES:  # a code block's argument is its language
                out.append(" " * indent + arg)
        elif rest.startswith("[") and "]" in rest:   # a footnote or citation: keep its text
            out.append(" " * indent + rest.split("]", 1)[1].strip())
        else:                                        # a comment, a link target or a substitution
            drop_body = True
        i += 1
        while i < len(lines) and _OPTION.match(lines[i]):
            i += 1
        if drop_body:
            while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > indent):
                i += 1
            out.append("")
    return tidy(clean_inline("\n".join(out)))


def tidy(text: str) -> str:
    """Common to every source: NFC, overstrikes and control characters removed, trailing spaces
    cut, runs of blank lines made one."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n"))
    text = re.sub(r".\x08", "", text)
    text = "".join(c for c in text if c in "\n\t" or unicodedata.category(c)[0] != "C")
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n")


# ----------------------------------------------------------------------------------------------
# Sources: each yields (document id, raw text) in a fixed order; its `clean` makes the text kept.

def _python_docs() -> Iterator[tuple[str, str]]:
    for path in sorted(PY_DOCS.rglob("*.rst.txt")):
        rel = path.relative_to(PY_DOCS).as_posix()
        if not rel.startswith("includes/"):   # fragments pulled into other pages
            yield f"python-docs:{rel}", path.read_text(encoding="utf-8")


def _kernel_docs() -> Iterator[tuple[str, str]]:
    for path in sorted(KERNEL_DOCS.rglob("*.rst.gz")):
        rel = path.relative_to(KERNEL_DOCS).as_posix()
        if not rel.startswith("translations/"):  # Chinese, Japanese, Korean, Italian
            yield f"kernel-docs:{rel[:-3]}", gzip.decompress(path.read_bytes()).decode("utf-8")


_VERSE = re.compile(r"^(\d?[A-Za-z]+)(\d+):(\d+) (.*)$")


def _bible() -> Iterator[tuple[str, str]]:
    """One document per chapter (`bible -f` prints one verse a line: `Ge1:1 In the beginning...`)."""
    dump = subprocess.run([str(BIBLE), "-f", "Gen1:1-Rev22:21"], capture_output=True, check=True,
                          text=True, encoding="utf-8").stdout
    chapter, verses = None, []
    for line in dump.split("\n"):
        m = _VERSE.match(line)
        if not m:
            continue
        key = f"{m.group(1)}{m.group(2)}"
        if key != chapter and verses:
            yield f"kjv:{chapter}", "\n".join(verses)
            verses = []
        chapter = key
        verses.append(line)
    if verses:
        yield f"kjv:{chapter}", "\n".join(verses)


def clean_verses(chapter: str) -> str:
    """Verse references go; one verse a line stays."""
    return tidy("\n".join(m.group(4) for m in map(_VERSE.match, chapter.split("\n")) if m))


_FORTUNE_SKIP = {"ascii-art", "translate-me"}   # pictures; Latin mottoes


def _fortunes() -> Iterator[tuple[str, str]]:
    """The `fortunes` package holds only the non-offensive set (`fortunes-off` is never read)."""
    for path in sorted(FORTUNES.iterdir()):
        if path.is_symlink() or path.suffix or path.name in _FORTUNE_SKIP or not path.is_file():
            continue
        entries = re.split(r"^%$", path.read_text(encoding="utf-8"), flags=re.M)
        for k, entry in enumerate(entries):
            yield f"fortunes:{path.name}#{k}", entry


SOURCES = (
    Source("python-docs", "python3.11-doc", "PSF License Version 2 (Debian copyright file)", 5_250_000,
           PY_DOCS, _python_docs, clean_rest),
    Source("kernel-docs", "linux-doc-6.1", "GPL-2.0 (some pages dual-licensed, see their SPDX lines)", 5_250_000,
           KERNEL_DOCS, _kernel_docs, clean_rest),
    Source("kjv", "bible-kjv-text", "public domain (1611/1769 text; Crown letters patent in the UK)", 5_000_000,
           BIBLE, _bible, clean_verses),
    Source("fortunes", "fortunes", "BSD-3-Clause (the UC Berkeley collection; entries are quotations)",
           2_600_000, FORTUNES, _fortunes, tidy),
)
DEBIAN_PACKAGES = ("python3.11-doc", "linux-doc-6.1", "bible-kjv", "fortunes")


# ----------------------------------------------------------------------------------------------

def _hash(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest()[:8], "big")


def is_heldout(doc_id: str, seed: int = SEED, percent: float = HELDOUT_PERCENT) -> bool:
    return _hash("heldout", seed, doc_id) % 10_000 < round(percent * 100)


def subsample(docs: list[tuple[str, str]], max_chars: int, seed: int = SEED) -> list[tuple[str, str]]:
    """Documents in seeded hash order, each kept while it fits the budget (greedy, so small ones
    can still fill the remainder)."""
    kept, total = [], 0
    for doc_id, text in sorted(docs, key=lambda d: _hash("keep", seed, d[0])):
        if total + len(text) <= max_chars:
            kept.append((doc_id, text))
            total += len(text)
    return kept


def ensure_packages() -> None:
    missing = [s.package for s in SOURCES if not s.needs.exists()]
    if not missing:
        return
    command = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *DEBIAN_PACKAGES]
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise BenchError(f"need Debian packages {', '.join(DEBIAN_PACKAGES)}: sudo {' '.join(command)}")
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(command, check=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def package_version(package: str) -> str:
    out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def write_text(path: Path, text: str) -> None:
    """UTF-8 whatever the locale (the BPE's JSON holds byte-level symbols), via temp file + rename."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def collect(seed: int = SEED, heldout_percent: float = HELDOUT_PERCENT) -> tuple[dict, list[dict]]:
    """Every source read, cleaned, deduplicated, subsampled and split: ({split: records}, per-source
    statistics for the card)."""
    splits: dict[str, list[dict]] = {name: [] for name in SPLIT_FILES}
    stats, seen = [], set()
    for source in SOURCES:
        docs, duplicates, raw_docs, raw_bytes = [], 0, 0, 0
        for doc_id, raw in source.read():
            raw_docs, raw_bytes = raw_docs + 1, raw_bytes + len(raw.encode("utf-8"))
            text = source.clean(raw)
            if len(text) < MIN_CHARS:
                continue
            if text in seen:  # the same fortune in two files must not sit in both splits
                duplicates += 1
                continue
            seen.add(text)
            docs.append((doc_id, text))
        kept = subsample(docs, source.max_chars, seed)
        for doc_id, text in kept:
            split = "heldout" if is_heldout(doc_id, seed, heldout_percent) else "train"
            splits[split].append({"id": doc_id, "source": source.name, "text": text})
        stats.append({"name": source.name, "package": source.package, "version": package_version(source.package),
                      "licence": source.licence, "raw_documents": raw_docs, "raw_bytes": raw_bytes,
                      "duplicates_dropped": duplicates, "documents_clean": len(docs),
                      "characters_clean": sum(len(t) for _, t in docs), "documents_kept": len(kept),
                      "characters_kept": sum(len(t) for _, t in kept), "max_chars": source.max_chars})
    for records in splits.values():
        records.sort(key=lambda r: _hash("order", seed, r["id"]))  # sources mixed: any prefix is a sample
    return splits, stats


def build(out_dir: Path, seed: int = SEED, bpe_vocabs: tuple[int, ...] = BPE_VOCABS,
          heldout_percent: float = HELDOUT_PERCENT) -> dict:
    from tasks.language.tokenizer import train_bpe

    ensure_packages()
    splits, stats = collect(seed, heldout_percent)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, records in splits.items():
        path = out_dir / SPLIT_FILES[name]
        write_split(path, records)
        files[path.name] = {"split": name, "documents": len(records),
                            "characters": sum(len(r["text"]) for r in records),
                            "by_source": {s.name: sum(r["source"] == s.name for r in records) for s in SOURCES},
                            "bytes": path.stat().st_size, "sha256": sha256_file(path)}
    for vocab in bpe_vocabs:
        path = out_dir / f"bpe-{vocab}.json"
        write_text(path, train_bpe([r["text"] for r in splits["train"]], vocab))
        files[path.name] = {"tokenizer": f"bpe-{vocab}", "bytes": path.stat().st_size, "sha256": sha256_file(path)}
    options = (f" --seed {seed}" if seed != SEED else "") + \
        (f" --heldout-percent {heldout_percent:g}" if heldout_percent != HELDOUT_PERCENT else "") + \
        (f" --bpe-vocab {' '.join(map(str, bpe_vocabs))}" if tuple(bpe_vocabs) != BPE_VOCABS else "")
    card = {"what": "plain-text English documents from Debian packages, for the language task",
            "command": "python -m tasks.language.build_corpus" + options,
            "seed": seed, "heldout_percent": heldout_percent, "min_chars": MIN_CHARS,
            "sources": stats, "files": files}
    write_text(out_dir / "card.json", json.dumps(card, indent=2) + "\n")
    write_text(out_dir / "CARD.md", render_card(card))
    return card


def render_card(card: dict) -> str:
    rows = "\n".join(
        f"| {s['name']} | `{s['package']}` {s['version']} | {s['licence']} | {s['raw_documents']} | "
        f"{s['raw_bytes']:,} | {s['documents_clean']} | {s['characters_clean']:,} | {s['documents_kept']} | "
        f"{s['characters_kept']:,} |" for s in card["sources"])
    files = "\n".join(
        f"| {name} | {f.get('documents', '')} | {f['characters']:,} | {f['bytes']:,} | `{f['sha256']}` |"
        if "split" in f else f"| {name} | | | {f['bytes']:,} | `{f['sha256']}` |"
        for name, f in card["files"].items())
    return f"""# Language corpus card

**What:** real English text that installs offline from Debian bookworm packages, as plain UTF-8
documents: the Python 3.11 documentation and the Linux 6.1 kernel documentation (their reST
sources, one document per page), the King James Bible (one document per chapter, one verse per
line) and the non-offensive fortunes (one document per fortune; the `fortunes-off` package is never
read). It stands in for FineWeb / OpenWebText, which cannot be reached here; `tasks.language.corpus`
also loads a user's own text files and local Hugging Face data sets.

**Made by:** `{card['command']}` (`make language-data`), which installs the packages when run as root.
Running it twice gives byte-identical files, given the same package versions.

**Cleaning (cheap, not a renderer):** reST directives that only steer Sphinx (index, toctree,
kernel-doc, include, image, tables given as directives, ...) and comments are dropped with their
indented bodies; other directive markers become their argument (`.. function:: f(x)` -> `f(x)`,
versionadded -> "New in version X."); section underlines and table borders go; roles, links and
``literals`` become their text. Code examples and grid-table rows stay. Every source: NFC,
overstrikes and control characters removed, blank-line runs collapsed. Pages of the Python docs'
`includes/`, the kernel docs' `translations/`, and the fortune files `ascii-art` and `translate-me`
are skipped. Documents under {card['min_chars']} characters after cleaning are dropped, and so is
a document whose exact text came earlier (in source order, then id order; counted in card.json).

**Subsample and split:** each source keeps the documents that fit its character budget, taken in
the order of sha256(seed, document id) (seed {card['seed']}), so that the committed files stay
under about 5 MB. A document is held out when sha256(seed, id) falls in the lowest
{card['heldout_percent']:g}%: the split is by document, never inside one. Each file lists its
documents in a seeded hash order, so the sources are mixed and any prefix is a sample.

Raw: the package's text as read (bytes of the reST sources, of `bible`'s verse dump, of the fortune
files). Clean: after cleaning, short documents and duplicates dropped. Kept: after the subsample.

| source | package and version | licence | raw documents | raw bytes | clean documents | clean characters | kept documents | kept characters |
|---|---|---|---|---|---|---|---|---|
{rows}

**Files** (`*.jsonl.xz`: one JSON object per line, `{{"id", "source", "text"}}`, xz-compressed;
`bpe-<vocab>.json`: a byte-level BPE trained on the train split with Hugging Face `tokenizers`):

| file | documents | characters | bytes | sha256 of the file |
|---|---|---|---|---|
{files}

This file and card.json are written by the build command; do not edit them by hand (a test checks
the sha256 column against the files).
"""


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    # The embedded folder, never MOEXBENCH_LANGUAGE_DATA's: that may hold a user's own corpus.
    parser.add_argument("--out", type=Path, default=EMBEDDED_DIR)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--bpe-vocab", type=int, nargs="+", default=list(BPE_VOCABS))
    parser.add_argument("--heldout-percent", type=float, default=HELDOUT_PERCENT)
    args = parser.parse_args(argv)

    def body():
        card = build(args.out, args.seed, tuple(args.bpe_vocab), args.heldout_percent)
        for name, f in card["files"].items():
            print(f"{args.out / name}: {f['bytes']:,} bytes" +
                  (f", {f['documents']} documents, {f['characters']:,} characters" if "split" in f else ""))

    return run_command(body, on_interrupt=FILES_WHOLE)


if __name__ == "__main__":
    sys.exit(main())
