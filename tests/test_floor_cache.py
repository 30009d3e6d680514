"""The random-init floor's cache: its key moves with every weight, game, setting and line of code that
decides the floor, and an entry is computed once, read back whole, and recomputed when damaged."""

import torch

from core.adapter import FeatureAdapter
from tasks.chess import floor_cache
from tasks.chess.floor_cache import adapter_fingerprint, cached_floor, floor_key


def _adapter(seed: int = 0) -> FeatureAdapter:
    torch.manual_seed(seed)
    return FeatureAdapter(torch.nn.Linear(4, 3))


def test_the_fingerprint_follows_the_model_and_any_dictionary_the_adapter_holds():
    a, b = _adapter(), _adapter()
    assert adapter_fingerprint(a) == adapter_fingerprint(b)
    with torch.no_grad():
        b.model.weight[0, 0] += 1e-6
    assert adapter_fingerprint(a) != adapter_fingerprint(b)
    c = _adapter()
    c.sae = torch.nn.Linear(3, 8)  # an attached dictionary is part of what computes the features
    assert adapter_fingerprint(c) != adapter_fingerprint(a)
    d = _adapter()
    d.factor = torch.ones(2, 2)  # a bare tensor attribute (semi-NMF's factor) too
    assert adapter_fingerprint(d) != adapter_fingerprint(a)
    e, f = _adapter(), _adapter()
    e.encode_iterations, f.encode_iterations = 100, 200  # a plain setting that changes the features
    assert adapter_fingerprint(e) != adapter_fingerprint(f)
    g = _adapter()
    g.model.cfg = "act_fn=relu"  # a model's config beyond its tensors' shapes
    assert adapter_fingerprint(g) != adapter_fingerprint(a)


def test_the_key_moves_with_the_games_the_settings_and_the_source(monkeypatch):
    a = _adapter()
    games = [["1.e4 e5"], ["1.d4 d5"], []]
    key = floor_key(a, games, {"layer": 1})
    assert floor_key(a, games, {"layer": 1}) == key
    assert floor_key(a, [["1.e4 e6"], ["1.d4 d5"], []], {"layer": 1}) != key
    assert floor_key(a, [["1.d4 d5"], ["1.e4 e5"], []], {"layer": 1}) != key  # which split is which
    assert floor_key(a, games, {"layer": 2}) != key
    monkeypatch.setattr(floor_cache, "source_fingerprint", lambda: "edited")
    assert floor_key(a, games, {"layer": 1}) != key


def test_an_entry_is_computed_once_and_a_damaged_one_again(monkeypatch, tmp_path):
    monkeypatch.setattr(floor_cache, "CACHE", tmp_path)
    calls = []

    def compute():
        calls.append(1)
        return {"metrics": {"coverage": 0.1 + 0.2}, "probe_f1_by_layer": [[1, 0.5]]}

    first, cached = cached_floor("k", compute)
    assert not cached and first == {"metrics": {"coverage": 0.1 + 0.2}, "probe_f1_by_layer": [[1, 0.5]]}
    second, cached = cached_floor("k", compute)
    assert cached and second == first and len(calls) == 1  # floats come back bit for bit
    (tmp_path / "chess" / "floor-k.json").write_text('{"metrics": ')  # a run killed mid-write elsewhere
    third, cached = cached_floor("k", compute)
    assert not cached and third == first and len(calls) == 2
    assert [p.name for p in (tmp_path / "chess").iterdir()] == ["floor-k.json"]  # no temp files left


def test_a_cache_that_cannot_be_written_costs_the_next_run_time_not_this_one(monkeypatch, tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("")  # the cache 'folder' is a file: every write fails
    monkeypatch.setattr(floor_cache, "CACHE", blocked)
    scores, cached = cached_floor("k", lambda: {"metrics": {"coverage": 0.5}})
    assert scores == {"metrics": {"coverage": 0.5}} and not cached
