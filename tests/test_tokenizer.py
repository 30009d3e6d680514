import pytest

from core.errors import BenchError
from tasks.chess.tokenizer import DOT_ID, START_ID, VOCAB, decode, encode, encode_batch


def test_vocabulary_is_the_specs_32_symbols_in_order():
    assert VOCAB == " #+-.0123456789;=BKNOQRabcdefghx"
    assert (encode(" ")[0], DOT_ID, START_ID) == (0, 4, 15)


def test_round_trip_of_a_real_game_prefix():
    text = ";1.e4 e5 2.Nf3 Nc6 3.Bb5 a6 4.O-O Nf6 5.Re1 b5 6.Bb3 d6 7.c3 O-O 8.h3 Nb8 9.d4 Nbd7 10.c4 c6 11.cxb5 axb5 12.Nc3 Bb7 13.Bg5 b4 14.Nb1 h6 15.Bh4 c5 16.dxe5 Nxe4 17.Bxe7 Qxe7 18.exd6 Qf6 19.Nbd2 Nxd6 20.Nc4 Nxc4 21.Bxc4 Nb6 22.Ne5 Rae8 23.Bxf7+ Rxf7 24.Nxf7 Rxe1+ 25.Qxe1 Kxf7 26.Qe3 Qg5 27.Qxg5 hxg5 28.b3 Ke6 29.a3 Kd6 30.axb4 cxb4 31.Ra5 Nd5 32.f3 Bc8 33.Kf2 Bf5 34.Ra7 g6 35.Ra6+ Kc5 36.Ke1 Nf4 37.g3 Nxh3 38.Kd2 Kb5 39.Rd6 Kc5 40.Ra6 Nf2 41.g4 Bd3 42.Re6 1/2-1/2"
    text = text.replace("1/2-1/2", "").strip()
    assert decode(encode(text)) == text


def test_unknown_character_is_a_clear_error():
    with pytest.raises(BenchError, match="not in the chess vocabulary"):
        encode(";1.e4 e5 {comment}")


def test_batch_pads_with_spaces_and_cuts():
    batch = encode_batch([";1.e4", ";1.d4 d5 2.c4"], 8)
    assert decode(batch[0]) == ";1.e4   "
    assert decode(batch[1]) == ";1.d4 d5"
