"""Evaluation positions: the first 20 positions with White to move in each game, their tokens in
the preset's format, and their BSPs.

Position n is the board after 2n plies: the move-number dot of move n + 1 in the character format,
token 2n in the move format (formats.py); the labels are the same in both. Labels take about 0.3 ms
a position (python-chess replays and legal moves), 10 CPU-seconds for the 40,000 of an evaluation, so
they are computed in worker processes, started before the model loads where the caller can
(`prefetch_labels`), and cached on disk under a key of the games' text.
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.errors import BenchError
from core.paths import CACHE
from core.worker_processes import die_with_parent
from tasks.chess.board_state import STRATEGY_FUNCTIONS, one_hot_to_masked_bsps
from tasks.chess.corpus import EVAL_MIN_DOTS, EVAL_WINDOW
from tasks.chess.position_labels import labels_for_game

LABELS_VERSION = 1  # bump when a BSP function changes, so stale caches are not reused


@dataclass
class Positions:
    games: list[str]            # each cut to the character window (what the labels read)
    game_index: np.ndarray      # (n,) which game a position is in
    token_index: np.ndarray     # (n,) index of its token in the game's tokens (a dot in chars)
    tokens: torch.Tensor        # (n_games, format window) every game's tokens, padded
    format: str                 # the token format: chars or moves
    classes: np.ndarray         # (n, 64) int8 piece class per square (value + 6), for the probe
    board_state: np.ndarray     # (n, 768) uint8 masked board-state BSPs
    strategy: dict[str, np.ndarray]  # name -> (n, 1 or 64) uint8


def dot_indices(game: str, n_dots: int = EVAL_MIN_DOTS, window: int = EVAL_WINDOW) -> list[int]:
    return [i for i, c in enumerate(game[:window]) if c == "."][:n_dots]


def _cache_path(games: list[str]) -> Path:
    key = hashlib.sha256(("\n".join(games) + f"|v{LABELS_VERSION}").encode()).hexdigest()[:20]
    return CACHE / "chess" / f"labels-{key}.npz"


def build_positions(games: list[str], workers: int = 2, fmt_name: str = "chars") -> Positions:
    return build_position_sets([games], workers, fmt_name)[0]


def build_position_sets(game_sets: list[list[str]], workers: int = 2, fmt_name: str = "chars",
                        sources: list[str] | None = None) -> list[Positions]:
    """`build_positions` of each list of games. Labels missing from the cache are computed for all
    of the lists at once, in one pool of workers: starting a pool costs a second or more. `sources`
    names the file each list was read from, for the line a bad game is refused with."""
    from tasks.chess.formats import game_format

    fmt = game_format(fmt_name)
    try:
        for games, source in zip(game_sets, sources or [None] * len(game_sets)):
            _check_games(games, source)  # beside the labels prefetch_labels started, if it did
    finally:
        prefetched = _wait_for_prefetch()  # on every path: no labelling is left running behind an error
    cuts = [[g[:EVAL_WINDOW] for g in games] for games in game_sets]
    paths = [_cache_path(cut) for cut in cuts]
    if prefetched is not None and prefetched.error is not None and set(prefetched.missing) & set(paths):
        raise prefetched.error  # these games are legal, so no input is at fault: raised as it is
    labels = {}
    for path in paths:
        if path.exists():
            with np.load(path) as data:
                labels[path] = (data["classes"],
                                {k[len("strategy."):]: data[k] for k in data.files if k.startswith("strategy.")})
    missing = {path: cut for path, cut in zip(paths, cuts) if path not in labels}
    labels.update(_compute_labels(missing, workers))
    out = []
    for games, cut, path in zip(game_sets, cuts, paths):
        classes, strategy = labels[path]
        game_index = np.repeat(np.arange(len(cut)), EVAL_MIN_DOTS)
        token_index = np.array([i for g in games for i in fmt.position_index(g)])
        tokens, _ = fmt.encode(games, fmt.window)
        out.append(Positions(cut, game_index, token_index, tokens, fmt.name, classes,
                             one_hot_to_masked_bsps(classes), strategy))
    return out


class _Prefetch:
    """Labels computed in a background thread (their work in worker processes); `error` is what
    stopped them, if anything did."""

    def __init__(self, missing: dict[Path, list[str]], workers: int):
        self.missing, self.error = missing, None
        self.thread = threading.Thread(target=self._compute, args=(missing, workers), daemon=True,
                                       name="chess position labels")
        self.thread.start()

    def _compute(self, missing, workers) -> None:
        try:
            _compute_labels(missing, workers)
        except Exception as e:  # noqa: BLE001 - handed to build_position_sets, which raises it
            self.error = e


_prefetch: _Prefetch | None = None


def prefetch_labels(game_sets: list[list[str]], workers: int = 2) -> None:
    """Starts computing the labels of `game_sets` that the cache lacks, in the background, so that
    what the caller does next (loading a model) overlaps it; build_position_sets waits for it. An
    illegal game makes it fail; build_position_sets checks the games first and names the bad one,
    and raises any other failure of the labels it builds as it is. Nothing starts while an earlier
    prefetch still runs."""
    global _prefetch
    if _prefetch is not None and _prefetch.thread.is_alive():
        return
    cuts = [[g[:EVAL_WINDOW] for g in games] for games in game_sets]
    missing = {path: cut for path, cut in ((_cache_path(c), c) for c in cuts) if not path.exists()}
    _prefetch = _Prefetch(missing, workers) if missing and workers > 1 else None


def _wait_for_prefetch() -> _Prefetch | None:
    """Waits for the labels prefetch_labels started, if any, and hands them over (with their error)."""
    global _prefetch
    done, _prefetch = _prefetch, None
    if done is not None:
        done.thread.join()
    return done


def _check_games(games: list[str], source: str | None) -> None:
    """`source`: the file the games were read from, one a line (a game is named by its line), or None
    (a game is named by its number)."""
    from tasks.chess.formats import game_move_ids

    for g, game in enumerate(games):
        where = f"{source}:{g + 1}" if source else f"evaluation game {g + 1}"
        try:
            game_move_ids(game)
        except ValueError as e:
            raise BenchError(f"{where}: {e}; the probe splits must hold legal games in the `;1.e4 e5 2.Nf3 ...` "
                             f"layout (python -m tasks.chess.own_games writes them)") from None
        if len(dot_indices(game)) < EVAL_MIN_DOTS:
            raise BenchError(f"{where}: fewer than {EVAL_MIN_DOTS} moves in its first {EVAL_WINDOW} characters; "
                             f"evaluation games must be at least 20 moves long")


def _compute_labels(cuts: dict[Path, list[str]], workers: int) -> dict[Path, tuple]:
    """Labels of each list of (cut) games, written to its cache path: {path: (classes, strategy)}."""
    every = [g for cut in cuts.values() for g in cut]
    if not every:
        return {}
    if workers > 1 and len(every) > 20:
        with mp.get_context("spawn").Pool(workers, initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
            per_game = pool.map(labels_for_game, every, chunksize=16)
    else:
        per_game = [labels_for_game(g) for g in every]
    out, start = {}, 0
    for path, cut in cuts.items():
        part, start = per_game[start:start + len(cut)], start + len(cut)
        classes = np.concatenate([p[0] for p in part])
        strategy = {name: np.concatenate([p[1][name] for p in part]) for name in STRATEGY_FUNCTIONS}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.stem + ".tmp.npz")
        np.savez_compressed(tmp, classes=classes, **{f"strategy.{k}": v for k, v in strategy.items()})
        os.replace(tmp, path)
        out[path] = (classes, strategy)
    return out
