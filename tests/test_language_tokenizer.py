import pytest

from core.errors import BenchError
from experiments.tokenizer_choice import chars_per_token, microseconds_per_char
from tasks.language.tokenizer import EOS, TextTokenizer, load_tokenizer, train_bpe

TEXT = "Hello world, the kobject’s refcount — naïve café.\n\n\tIn the beginning 1234567 ಠ_ಠ"


def test_gpt2_ids_are_gpt2s():
    tok = load_tokenizer("gpt2")
    assert tok.encode("Hello world") == [15496, 995]
    assert tok.token_strings([15496, 995]) == ["Hello", " world"]
    assert (tok.vocab_size, tok.eos_id) == (50257, 50256)


@pytest.mark.parametrize("name", ["gpt2", "bpe-4096"])
def test_token_strings_and_decode_round_trip(name):
    tok = load_tokenizer(name)
    ids = tok.encode(TEXT)
    strings = tok.token_strings(ids)
    assert len(strings) == len(ids) and "".join(strings) == TEXT and tok.decode(ids) == TEXT
    assert " world" in strings  # spaces stay with their token
    assert max(ids) < tok.vocab_size and tok.token_strings([tok.eos_id]) == [EOS]


def test_a_character_split_across_tokens_shows_with_the_token_that_completes_it():
    tok = load_tokenizer("gpt2")
    ids = tok.encode("’")  # three UTF-8 bytes, two GPT-2 tokens
    assert len(ids) == 2 and tok.token_strings(ids) == ["", "’"]


def test_separator_in_text_is_plain_text():
    for name in ("gpt2", "bpe-4096"):
        tok = load_tokenizer(name)
        ids = tok.encode(f"a{EOS}b")
        assert tok.eos_id not in ids and tok.decode(ids) == f"a{EOS}b"


def test_trained_bpe_is_deterministic():
    from tokenizers import Tokenizer

    from tasks.language.corpus import read_split

    texts = read_split("heldout")[:200]  # real text: many merges tie on count, so tie-breaking is tested
    first, second = train_bpe(texts, 600), train_bpe(texts, 600)
    assert first == second
    tok = TextTokenizer("bpe-600", Tokenizer.from_str(first))
    assert tok.vocab_size == 600 and tok.eos_id == 0
    ids = tok.encode("the cat sat")
    assert ids == TextTokenizer("bpe-600", Tokenizer.from_str(second)).encode("the cat sat")
    assert len(ids) < len("the cat sat") and tok.decode(ids) == "the cat sat"
    tiny = train_bpe(["the cat sat on the mat"] * 5, 300)  # runs out of pairs: smaller than asked
    assert TextTokenizer("bpe-300", Tokenizer.from_str(tiny)).vocab_size < 300


def test_committed_bpe_has_its_advertised_size():
    tok = load_tokenizer("bpe-4096")
    assert (tok.name, tok.vocab_size, tok.eos_id) == ("bpe-4096", 4096, 0)


def test_unknown_or_missing_tokenizer_lists_the_valid_ones(tmp_path):
    with pytest.raises(BenchError, match=r"unknown tokenizer 'gpt3'; choose one of gpt2, bpe-4096"):
        load_tokenizer("gpt3")
    with pytest.raises(BenchError, match=r"bpe-512\.json is missing; run `python -m tasks\.language\.build_corpus "
                                         r"--bpe-vocab 512`"):
        load_tokenizer("bpe-512")  # the embedded corpus: its own build command
    # A folder of one's own: train it there, never rebuild the embedded corpus over it.
    with pytest.raises(BenchError, match=r"bpe-512\.json is missing; train one on that folder's train split: "
                                         r"`python -m tasks\.language\.own_corpus --out .* --bpe-only --bpe-vocab 512`"):
        load_tokenizer("bpe-512", tmp_path)
    # The size the committed checkpoints read: copying ours comes first.
    with pytest.raises(BenchError, match=r"bpe-4096\.json is missing; copy .*data/language/bpe-4096\.json there"):
        load_tokenizer("bpe-4096", tmp_path)


class _TwoCharTokens:
    """A tokenizer whose tokens are 2 characters each (the last may be 1)."""

    def encode(self, text):
        return list(range((len(text) + 1) // 2))


def test_cost_per_character_worked_by_hand():
    # "abcd" -> 2 tokens, "efg" -> 2 tokens: 7 characters over 4 tokens.
    assert chars_per_token(_TwoCharTokens(), ["abcd", "efg"]) == (1.75, 7, 4)
    # A 0.5 s step of 16 x 256 tokens at 2.5 characters each reads 10240 characters: 48.828125 us each.
    assert microseconds_per_char(0.5, 16 * 256, 2.5) == pytest.approx(48.828125)
