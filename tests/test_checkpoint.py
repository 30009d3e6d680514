import dataclasses
import json

import pytest
import torch

from core.errors import BenchError
from models.checkpoint import load_model, save_model
from models.gpt import GPT
from tasks.chess.task import ChessTask


def _saved(tmp_path):
    torch.manual_seed(0)
    model = GPT(ChessTask.dense_config("tiny"))
    save_model(tmp_path / "m", model, {"note": "test"})
    return model


def test_round_trip_is_bf16_and_loads_into_fp32(tmp_path):
    model = _saved(tmp_path)
    loaded, meta = load_model(tmp_path / "m", ChessTask.dense_config("tiny"))
    assert meta["note"] == "test"
    for p, q in zip(model.parameters(), loaded.parameters()):
        assert q.dtype == torch.float32
        assert torch.equal(p.to(torch.bfloat16).float(), q)


def test_truncated_checkpoint_is_a_clear_error_and_is_left_alone(tmp_path):
    _saved(tmp_path)
    path = tmp_path / "m.safetensors"
    path.write_bytes(path.read_bytes()[:1000])
    before = path.read_bytes()
    with pytest.raises(BenchError, match="does not match the sha256 recorded"):
        load_model(tmp_path / "m")
    assert path.read_bytes() == before
    # Without a recorded checksum (checkpoints older than it), the reader itself refuses.
    meta = json.loads((tmp_path / "m.json").read_text())
    del meta["weights_sha256"]
    (tmp_path / "m.json").write_text(json.dumps(meta))
    with pytest.raises(BenchError, match="unreadable"):
        load_model(tmp_path / "m")


def test_weights_changed_in_place_are_caught_by_the_checksum(tmp_path):
    _saved(tmp_path)
    path = tmp_path / "m.safetensors"
    data = bytearray(path.read_bytes())
    data[-4096:] = bytes(4096)  # zero the last 4 KB: still a loadable file, silently other weights
    path.write_bytes(bytes(data))
    with pytest.raises(BenchError, match="the weights changed after they were written"):
        load_model(tmp_path / "m")


def test_checkpoint_of_another_shape_names_the_field(tmp_path):
    _saved(tmp_path)
    other = dataclasses.replace(ChessTask.dense_config("tiny"), d_model=64, d_mlp=256)
    with pytest.raises(BenchError, match="d_model: checkpoint 32 != expected 64"):
        load_model(tmp_path / "m", other)


def test_a_large_checkpoint_is_written_in_parts_and_loads_whole(tmp_path, monkeypatch):
    import models.checkpoint as ckpt

    monkeypatch.setattr(ckpt, "SHARD_BYTES", 20_000)  # the tiny model is ~250 KB in bf16: many parts
    model = _saved(tmp_path)
    parts = sorted(p.name for p in tmp_path.glob("m*.safetensors"))
    assert len(parts) > 2 and "m.2.safetensors" in parts
    assert all(p.stat().st_size <= 20_000 + 64 * 1024 for p in tmp_path.glob("m*.safetensors"))
    meta = json.loads((tmp_path / "m.json").read_text())
    assert len(meta["more_weights_sha256"]) == len(parts) - 1
    loaded, _ = load_model(tmp_path / "m", ChessTask.dense_config("tiny"))
    for p, q in zip(model.parameters(), loaded.parameters()):
        assert torch.equal(p.to(torch.bfloat16).float(), q)
    # a part changed or gone is caught, naming it
    (tmp_path / "m.2.safetensors").write_bytes(b"x")
    with pytest.raises(BenchError, match="m.2.safetensors does not match the sha256"):
        load_model(tmp_path / "m")
    (tmp_path / "m.2.safetensors").unlink()
    with pytest.raises(BenchError, match="m.2.safetensors is missing"):
        load_model(tmp_path / "m")
    # saving again in one part removes the parts of the earlier save
    monkeypatch.setattr(ckpt, "SHARD_BYTES", 12 * 2**20)
    save_model(tmp_path / "m", model, {})
    assert sorted(p.name for p in tmp_path.glob("m*.safetensors")) == ["m.safetensors"]
