"""The chess task: what the harness calls to train a chess model and to evaluate an adapter."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import torch

from core.adapter import FeatureAdapter
from core.errors import BenchError
from core.task import Task
from core.training_data import TrainingData
from models.config import GPTConfig, TrainConfig
from tasks.chess.config import ChessConfig
from tasks.chess.corpus import EMBEDDED_DIR, OWN_GAMES_FIX, SPLIT_FILES, read_split
from tasks.chess.formats import GameError, PackedStream, flat_corpus, game_format, packed_stream
from tasks.chess.presets import PRESETS

# Every place our numbers may differ from the reference implementation (docs/chess.md sections 13-14).
_OR_EXACT = ("reconstruction ORs labelled active features exactly; the reference sums into int8, which wraps "
             "at 128 agreeing features, so dense unit sets at low thresholds can differ from it there")
_ENGINE_GAMES = "data: engine games with human openings (Stockfish + gnuchess-book), not lichess human games"
_PROBE = ("linear probe: multinomial logistic per square fitted by L-BFGS (100 iterations, L2 1e-4) on "
          "standardised residual activations, scored as micro F1 over the 768 masked BSPs")
# Alive is "max > 0"; the reference keeps a feature that is non-zero anywhere, scaled by |max|. The
# two differ only for a feature never positive in the sample, which the reference keeps and can still
# switch on at a probe position where it happens to be positive.
_ALIVE = ("a feature is alive when its maximum is above 0 (the reference: when it is non-zero anywhere, scaled "
          "by its absolute maximum); they differ only for a feature never positive in the statistics sample, "
          "dead and dropped here, alive there (and scored where it is positive at a probe position)")
DEVIATIONS = [
    _OR_EXACT, _ENGINE_GAMES,
    "max activation and aliveness come from every character position of the first 256 characters of "
    "n_stat_games train-split games (not in either probe set)",
    _ALIVE, _PROBE,
]
# The move format reads other tokens, and its statistics come from them.
MOVE_FORMAT_DEVIATIONS = [
    _OR_EXACT, _ENGINE_GAMES,
    "tokens: one per ply from a fixed vocabulary of every UCI move (move format), not Karvonen's SAN "
    "characters; features are read at <bos> and after each Black move, the positions of his dots",
    "max activation and aliveness come from every token (<bos> and up to 63 moves) of n_stat_games "
    "train-split games (not in either probe set)",
    _ALIVE, _PROBE,
]


def deviations(fmt_name: str) -> list[str]:
    """The format's deviations; with your own games (MOEXBENCH_CHESS_DATA), the data line names them."""
    listed = DEVIATIONS if fmt_name == "chars" else MOVE_FORMAT_DEVIATIONS
    folder = ChessTask.own_data()
    if folder is None:
        return listed
    own = f"data: your games in {folder.resolve()} (MOEXBENCH_CHESS_DATA), not the committed engine games"
    return [own if line == _ENGINE_GAMES else line for line in listed]


def training_files(preset: str) -> list[Path]:
    """The train split, then the preset's shards of more games (more_games.py)."""
    from tasks.chess.more_games import shard_files

    wanted = PRESETS[preset].more_shards
    shards = shard_files(EMBEDDED_DIR)[:wanted] if wanted else []
    if len(shards) < wanted and not (EMBEDDED_DIR / "card.json").is_file():  # your own games: no generator
        no_shards = ", ".join(name for name, p in PRESETS.items() if not p.more_shards)
        raise BenchError(f"preset {preset} trains on {wanted} shards of more games in {EMBEDDED_DIR / 'more'}, "
                         f"{len(shards)} exist; add shards of your games there (train-000.txt.xz, ...: xz text, one "
                         f"game per line) or choose a preset that reads none ({no_shards})")
    if len(shards) < wanted:
        raise BenchError(f"preset {preset} trains on {wanted} shards of {EMBEDDED_DIR / 'more'}, {len(shards)} exist; "
                         f"run `python -m tasks.chess.more_games --shards {wanted}` (resumable)")
    return [EMBEDDED_DIR / SPLIT_FILES["train"]] + shards


def train_data_fingerprint(preset: str) -> str:
    """What a checkpoint or curve records of the corpus it was trained on."""
    files = training_files(preset)
    digest = hashlib.sha256((files[0]).read_bytes()).hexdigest()
    out = f"chess train split sha256 {digest}"
    if len(files) > 1:
        more = hashlib.sha256(b"".join(hashlib.sha256(f.read_bytes()).digest() for f in files[1:])).hexdigest()
        out += f" + {len(files) - 1} shards of more games, sha256 of their sha256s {more}"
    return out


class ChessTask(Task):
    name = "chess"
    Config = ChessConfig
    presets = tuple(PRESETS)

    @staticmethod
    def dense_config(preset: str) -> GPTConfig:
        return GPTConfig(**PRESETS[preset].model_shape())

    @staticmethod
    def train_config(preset: str, seed: int) -> TrainConfig:
        return dataclasses.replace(PRESETS[preset].train, seed=seed)

    @staticmethod
    def token_format(preset: str) -> str:
        return PRESETS[preset].format

    @staticmethod
    def untagged_format(preset: str) -> str:
        return "chars"  # chars checkpoints predate the field

    @staticmethod
    def format_mismatch_fix(preset: str, stem: Path) -> str:
        # A checkpoint's files belong to its preset: this one predates the preset's format (`cpu` read
        # characters once). A committed checkpoint is of the committed presets' format, so git restores it.
        return (f"delete {stem.name}.json and {stem.name}.safetensors in {stem.parent} to train it again in "
                f"{PRESETS[preset].format!r} (a committed one comes back with `git checkout`)")

    @staticmethod
    def own_data() -> Path | None:
        from tasks.chess.corpus import EMBEDDED_DIR, PACKAGED_DIR

        return None if EMBEDDED_DIR.resolve() == PACKAGED_DIR.resolve() else EMBEDDED_DIR

    @staticmethod
    def training_data(preset: str, seed: int) -> TrainingData:
        """Packed rows of the preset's format. Validation: the last n_val_games of the train split."""
        p = PRESETS[preset]
        fmt = game_format(p.format)
        files = training_files(preset)
        flat = [flat_corpus(fmt, path) for path in files]
        base_tokens, base_starts = flat[0]
        if len(base_starts) <= p.n_val_games:
            raise BenchError(f"{files[0]} holds {len(base_starts)} games; preset {preset} holds out "
                             f"{p.n_val_games} of them for validation and needs more to train on")
        cut = int(base_starts[-p.n_val_games])
        parts = [(base_tokens[:cut], base_starts[:-p.n_val_games])] + flat[1:]
        offsets = np.cumsum([0] + [len(t) for t, _ in parts[:-1]])
        stream = PackedStream(torch.from_numpy(np.concatenate([t for t, _ in parts]).astype(np.int64)),
                              torch.from_numpy(np.concatenate([s + o for (_, s), o in zip(parts, offsets)])),
                              p.n_ctx, seed)
        val_tokens = ChessTask.validation_tokens(preset, seed)
        fingerprint = {"data": train_data_fingerprint(preset), "n_val_games": p.n_val_games}
        if p.format != "chars":  # chars checkpoints predate the field; absent means chars
            fingerprint["format"] = p.format
        return TrainingData(lambda step: stream.batch(step, p.train.batch_size), val_tokens, fingerprint)

    @staticmethod
    def validation_tokens(preset: str, seed: int) -> torch.Tensor:
        """The last n_val_games games of the train split, packed as training packs games, in batches
        of 16: what val_loss and the fidelity metrics read. Only these games are tokenized, so an
        evaluation never replays the whole training corpus (minutes on a fresh clone)."""
        p = PRESETS[preset]
        path = EMBEDDED_DIR / SPLIT_FILES["train"]
        games = read_split("train")
        if len(games) <= p.n_val_games:
            raise BenchError(f"{path} holds {len(games)} games; preset {preset} holds out "
                             f"{p.n_val_games} of them for validation and needs more to train on")
        first = len(games) - p.n_val_games
        try:
            val = packed_stream(game_format(p.format), games[first:], p.n_ctx, seed=10_000 + seed)
        except GameError as e:
            raise BenchError(f"{path}:{first + e.game_index + 1}: {e.reason}; not a chess game in the "
                             f"`;1.e4 e5 ...` format ({OWN_GAMES_FIX})") from None
        return torch.cat([val.batch(step, 16) for step in range(max(1, p.n_val_games // 16))])

    @staticmethod
    def eval_callback(preset: str):
        """Probe F1 per layer at every validation step (the board-knowledge curve); not for tiny runs."""
        if preset.startswith("tiny"):
            return None
        from functools import partial

        from tasks.chess.training_curve import curve_point

        return partial(curve_point, fmt_name=PRESETS[preset].format, n_games=PRESETS[preset].n_curve_games)

    @staticmethod
    def result_variant(config: ChessConfig, baseline: ChessConfig | None = None) -> str | None:
        """A run scoring other features (another layer or site than `baseline`, the model's default run),
        or lacking metrics the default run has (no random-init floor, no legal moves), writes to a folder
        named after those settings, e.g. results/chess/layer.-2/, never over the default run's."""
        default = baseline or ChessConfig()
        changed = [f"{name}.{getattr(config, name)}" for name in ChessConfig.OTHER_FEATURES
                   if getattr(config, name) != getattr(default, name)]
        if not config.random_floor:
            changed.append("random_floor.False")
        if config.legal_move_games == 0:
            changed.append("legal_move_games.0")
        return "_".join(changed) or None

    @staticmethod
    def after_training(model_name: str, preset: str, seed: int, meta: dict) -> None:
        if seed == 0 and not preset.startswith("tiny"):
            from core.own_data import variant_part
            from tasks.chess.training_curve import write_curve

            write_curve(model_name, preset, meta, variant_part(ChessTask))  # own data: beside its results

    @staticmethod
    def prepare(config: ChessConfig, preset: str) -> None:
        from tasks.chess.positions import prefetch_labels

        prefetch_labels(list(_probe_games(config, preset)), config.workers)

    @staticmethod
    def evaluate(adapter: FeatureAdapter, random_adapter: FeatureAdapter | None, config: ChessConfig,
                 preset: str, seed: int) -> dict:
        from tasks.chess.positions import build_position_sets

        p = PRESETS[preset]
        train_games, test_games = _probe_games(config, preset)
        sources = [str(EMBEDDED_DIR / SPLIT_FILES[name]) for name in ("probe_train", "probe_test")]
        train, test = build_position_sets([train_games, test_games], config.workers, p.format, sources)
        stat_games = read_split("train")[:p.n_stat_games]
        args = dict(layer=config.layer, site=config.site, batch_size=config.batch_size,
                    probe_layers=config.probe_layers, seed=seed)
        floor_later = None if random_adapter is None else _random_init_floor(
            random_adapter, train, test, stat_games, args, [train_games, test_games, stat_games])
        try:  # an error in the trained model's scoring stops the floor's process (if any)
            metrics, details, scored = _score_trained(adapter, config, preset, seed, train, test, stat_games, args)
            if floor_later is not None:
                floor, cached = floor_later.result()
        finally:
            if floor_later is not None:
                floor_later.cancel()  # nothing to stop once its result was read
        if floor_later is not None:
            for key in ("coverage", "reconstruction", "coverage_strategy", "reconstruction_strategy", "probe_f1",
                        "alive_fraction"):
                metrics[f"{key}_random_init"] = floor["metrics"][key]
            metrics["floor_mostly_dead"] = _floor_mostly_dead(adapter.name, floor["metrics"]["alive_fraction"])
            details["random_init"] = {"groups": _summarise_groups(floor["groups"]),
                                      "probe_f1_by_layer": dict(floor["probe_f1_by_layer"]),
                                      "from_cache": cached}
        per_bsp = [{"group": "board_state", "bsp": j, "best_f1": f1, "best_feature": f}
                   for j, (f1, f) in enumerate(zip(scored.groups["board_state"]["best_f1_per_bsp"],
                                                   scored.groups["board_state"]["best_feature_per_bsp"]))]
        return {"metrics": metrics, "details": details, "deviations": deviations(p.format), "per_item": per_bsp}


def _probe_games(config: ChessConfig, preset: str) -> tuple[list[str], list[str]]:
    """The games the probe is fitted on and scored on (and the features with it)."""
    n_games = config.probe_games or PRESETS[preset].n_probe_games
    return read_split("probe_train")[:n_games], read_split("probe_test")[:n_games]


def _score_trained(adapter, config: ChessConfig, preset: str, seed: int, train, test, stat_games: list[str],
                   args: dict) -> tuple[dict, dict, object]:
    """The trained model's metrics and details: features against the board (score_adapter) and, beside
    them in a second process where a core is free (core/side_process.py), what reads the model rather
    than its features: router, legal moves, validation loss and the splice's fidelity."""
    from core.fidelity import splice_details
    from core.side_process import beside
    from tasks.chess.evaluate import score_adapter

    with beside(lambda: _model_level(adapter, config, preset, seed, test, stat_games),
                name="model-level metrics", device=str(adapter.device)) as later:
        scored = score_adapter(adapter, train, test, stat_games, **args)
        model_metrics, model_details = later.result()
    metrics = {**scored.metrics, **model_metrics}
    if metrics.get("router_collapsed"):
        print(f"warning: {adapter.name}'s router has collapsed: its {model_details['top_k']} busiest experts "
              f"take {model_details['top_k_load']:.0%} of assignments at layer {config.layer}")
    elif model_details.get("experts_unused"):
        print(f"warning: {model_details['experts_unused']} of {adapter.name}'s {model_details['n_experts']} experts "
              f"take under a quarter of their even share of assignments at layer {config.layer}")
    if metrics["mostly_dead"]:
        print(f"warning: {metrics['dead_fraction']:.0%} of {adapter.name}'s features never fire on the "
              f"validation games; flagged as mostly_dead in the results")
    details = {"groups": _summarise_groups(scored.groups), "probe_f1_by_layer": scored.probe_by_layer,
               "positions": {"probe_train": len(train.game_index), "probe_test": len(test.game_index)},
               "feature_hook": adapter.feature_hook(config.layer, config.site),
               "feature_kind": adapter.feature_kind, "model": model_details,
               "splice": splice_details(adapter, config.layer, config.site), "seconds": scored.seconds}
    return metrics, details, scored


def _model_level(adapter, config: ChessConfig, preset: str, seed: int, test, stat_games: list[str]) -> tuple[dict, dict]:
    """(metrics, router details) of the model itself: router statistics, legal-move rate, validation
    loss, and the loss recovered, perplexity, explained variance and dead fraction of the splice (1 and
    0 by construction for a model's own units)."""
    from core.fidelity import fidelity

    p = PRESETS[preset]
    fmt = game_format(p.format)
    # The router statistics read games as training does. Characters: each game padded with spaces,
    # which the character model reads as text. Moves: games packed back to back, since <pad> never
    # occurs in training and would skew the router's statistics.
    router_tokens = (fmt.encode(stat_games[:64], fmt.window)[0] if p.format == "chars"
                     else packed_stream(fmt, stat_games[:64], p.n_ctx, seed).batch(0, 64))
    metrics, details = adapter.model_metrics(router_tokens, config.layer)
    if config.legal_move_games:
        from tasks.chess.legal_moves import legal_move_rate

        metrics["legal_move_rate"] = legal_move_rate(adapter, test, config.legal_move_games)
    val_tokens = ChessTask.validation_tokens(preset, seed)
    metrics.update(fidelity(adapter, val_tokens, config.layer, config.site))
    # The same rows' clean loss, measured once: fidelity's ce_clean is val_loss (what training reports
    # as val_loss too, summed in another order: equal to about 1e-8).
    metrics["val_loss"] = metrics["ce_clean"]
    return metrics, details


def _random_init_floor(adapter, train, test, stat_games, args: dict, games: list[list[str]]):
    """The floor's scores, from `.cache/` when this adapter's weights, these games, settings and code
    were scored before (tasks/chess/floor_cache.py). Returns a handle whose `.result()` gives (scores,
    whether they came from the cache) and whose `.cancel()` stops their computation; when they must be
    computed and a second core is there for one thread, they are computed in a second process while
    the caller scores the trained model (core/side_process.py): one thread each, so the same numbers
    as one after the other."""
    from core.side_process import beside, deferred
    from tasks.chess.evaluate import score_adapter
    from tasks.chess.floor_cache import cached_floor, floor_key, floor_path

    def compute() -> dict:
        scored = score_adapter(adapter, train, test, stat_games, **args)
        return {"metrics": scored.metrics, "groups": scored.groups,
                "probe_f1_by_layer": list(scored.probe_by_layer.items())}  # int keys survive JSON as pairs

    key = floor_key(adapter, games, {**args, "format": train.format, "device": str(adapter.device)})
    if floor_path(key).exists():
        return deferred(lambda: cached_floor(key, compute))
    later = beside(lambda: cached_floor(key, compute), name="random-init floor", device=str(adapter.device))
    if later.forked:
        print("random-init floor: scored in a second process beside the trained model (one thread each)")
    return later


def _floor_mostly_dead(name: str, alive: float) -> float:
    """1.0 when more than half the floor's features never fire in the statistics games, else 0.0. A
    dictionary fitted on a random-init model with the trained model's recipe can end mostly dead
    (JumpReLU's thresholds do): so few live features leave few chance matches, and a margin over that
    floor overstates what training added when the trained model's own features are alive (its
    mostly_dead says). Said in the results and beside the model's name in the tables."""
    from core.fidelity import MOSTLY_DEAD

    dead = 1.0 - alive
    if dead > MOSTLY_DEAD:
        print(f"warning: {dead:.0%} of the features of {name}'s random-init floor never fire in the statistics "
              f"games; flagged as floor_mostly_dead in the results (its margin over the floor is inflated)")
    return float(dead > MOSTLY_DEAD)


def _summarise_groups(groups: dict) -> dict:
    return {name: {k: v for k, v in g.items() if not k.endswith("per_bsp")} for name, g in groups.items()}
