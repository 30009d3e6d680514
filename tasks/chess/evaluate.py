"""The chess evaluation of one adapter: features at the evaluation positions (White to move) ->
coverage, reconstruction, and the linear-probe ceiling on the residual stream at the same positions
(docs/chess.md)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from core.adapter import FeatureAdapter
from core.progress import progress
from tasks.chess.board_state import KEPT_CLASSES, STRATEGY_FUNCTIONS
from tasks.chess.feature_metrics import BSPGroup, evaluate_features
from tasks.chess.formats import game_format
from tasks.chess.positions import Positions
from tasks.chess.probe import probe_f1


@dataclass
class ScoredModel:
    metrics: dict
    groups: dict          # per BSP group: coverage/reconstruction and their thresholds
    probe_by_layer: dict  # layer -> probe F1
    seconds: dict         # wall time of each stage, for the cost of the evaluation


def _at_positions(adapter: FeatureAdapter, positions: Positions, fn, batch_size: int, desc: str,
                  columns: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
    """fn(tokens) -> a tuple of (batch, pos, width) tensors, each gathered at each evaluation position (a
    dot in the character format): (n_positions, width) each, the first cut to the `columns` (a boolean
    mask over its width), selected after the gather: a few positions of a wide code are copied, not
    every one."""
    out = []
    per_game = len(positions.game_index) // len(positions.games)
    dots = torch.from_numpy(positions.token_index).view(len(positions.games), per_game)
    for start in progress(range(0, len(positions.games), batch_size), desc=desc, unit="batch"):
        tokens = positions.tokens[start:start + batch_size]
        idx = dots[start:start + len(tokens)]
        gathered = []
        for acts in fn(tokens.to(adapter.device)):
            acts = acts.float().cpu()
            gathered.append(acts[torch.arange(len(tokens))[:, None], idx].reshape(-1, acts.shape[-1]))
        if columns is not None:
            gathered[0] = gathered[0][:, columns]
        out.append(gathered)
    return tuple(torch.cat(part) for part in zip(*out))


def feature_statistics(adapter: FeatureAdapter, games: list[str], layer: int, site: str,
                       batch_size: int, fmt_name: str) -> tuple[torch.Tensor, float]:
    """Max activation per feature over every token of `games` (the format's window: the first 256
    characters, or <bos> and the first 63 moves; padding excluded), and the share of (token, feature)
    entries > 0 there (times the number of features: the mean L0 per token)."""
    fmt = game_format(fmt_name)
    device = adapter.device
    max_acts, active, count = None, 0.0, 0
    for start in progress(range(0, len(games), batch_size), desc="feature statistics", unit="batch"):
        tokens, lengths = fmt.encode(games[start:start + batch_size], fmt.window)
        acts = adapter.features(tokens.to(device), layer, site).float().cpu()
        acts = acts[lengths[:, None] > torch.arange(fmt.window)]
        batch_max = acts.max(0).values
        max_acts = batch_max if max_acts is None else torch.maximum(max_acts, batch_max)
        active += (acts > 0).sum().item()
        count += len(acts)
    return max_acts, active / (count * max(1, max_acts.numel()))


def bsp_groups(train: Positions, test: Positions) -> dict[str, BSPGroup]:
    groups = {"board_state": BSPGroup(torch.from_numpy(train.board_state), torch.from_numpy(test.board_state),
                                      len(KEPT_CLASSES))}
    for name in STRATEGY_FUNCTIONS:
        groups[name] = BSPGroup(torch.from_numpy(train.strategy[name]), torch.from_numpy(test.strategy[name]), 1)
    return groups


def score_adapter(adapter: FeatureAdapter, train: Positions, test: Positions, stat_games: list[str],
                  layer: int, site: str, batch_size: int, probe_layers: str, seed: int) -> ScoredModel:
    clock = time.perf_counter()
    seconds = {}

    def lap(stage):
        nonlocal clock
        now = time.perf_counter()
        seconds[stage] = round(now - clock, 2)
        clock = now

    max_acts, l0_fraction = feature_statistics(adapter, stat_games, layer, site, batch_size, train.format)
    alive = max_acts > 0  # a feature that never fires (> 0) is dead and dropped
    n_layers = adapter.n_layers
    layer_index = adapter.resolve_layer(layer)
    layers = range(n_layers) if probe_layers == "all" else [layer_index]
    # One forward pass per game batch reads the features and caches every probed layer's residual stream.
    both = lambda tokens: adapter.features_and_residual(tokens, layer, site, list(layers))  # noqa: E731
    train_acts, r_train = _at_positions(adapter, train, both, batch_size, "features and residual, probe-train games",
                                        alive)
    test_acts, r_test = _at_positions(adapter, test, both, batch_size, "features and residual, probe-test games",
                                      alive)
    lap("feature_and_residual_activations")
    groups = evaluate_features(train_acts, test_acts, max_acts[alive], bsp_groups(train, test))
    lap("coverage_and_reconstruction")
    alive_index = alive.nonzero().squeeze(1).tolist()
    for g in groups.values():  # back from alive-only columns to the site's feature indices
        g["best_feature_per_bsp"] = [alive_index[f] if f >= 0 else -1 for f in g["best_feature_per_bsp"]]

    d = adapter.d_model
    ct, cs = torch.from_numpy(train.classes.astype(np.int64)), torch.from_numpy(test.classes.astype(np.int64))
    probe_by_layer = {i: probe_f1(r_train[:, k * d:(k + 1) * d], ct, r_test[:, k * d:(k + 1) * d], cs, seed)
                      for k, i in enumerate(progress(layers, desc="linear probe", unit="layer"))}
    lap("linear_probe")

    strategy = [groups[name] for name in STRATEGY_FUNCTIONS]
    n_features = int(max_acts.numel())
    metrics = {
        "coverage": groups["board_state"]["coverage"],
        "reconstruction": groups["board_state"]["reconstruction"],
        "coverage_strategy": float(np.mean([g["coverage"] for g in strategy])),
        "reconstruction_strategy": float(np.mean([g["reconstruction"] for g in strategy])),
        "probe_f1": probe_by_layer[layer_index],
        "l0": l0_fraction * n_features,
        "alive_fraction": alive.float().mean().item(),
        "n_features": n_features,
    }
    return ScoredModel(metrics, groups, probe_by_layer, seconds)
