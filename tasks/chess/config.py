"""Settings of the chess evaluation (each can be overridden with ARGS="key=value ...")."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ChessConfig:
    # Block whose features are scored; negative counts from the end. -3 is index 5 of an 8-layer
    # model, the layer Karvonen's SAEs use and the one we score (docs/moex.md section 8).
    layer: int = -3
    # "mlp": hidden units at blocks.{layer}.mlp.hook_post (or the adapter's own features there);
    # "resid": the residual stream after the block; "attn": the attention output before its projection,
    # blocks.{layer}.attn.hook_z with the heads concatenated (what an attention SAE reads).
    site: str = "mlp"
    # Linear probe on the residual stream after the scored block only ("site"), or after every block ("all").
    probe_layers: str = "site"
    # Also evaluate a random-init model of the same shape: the floor the trained model must beat.
    random_floor: bool = True
    # 0 means the preset's number of games per probe split (1000 for cpu = 20,000 positions).
    probe_games: int = 0
    # Probe-test games whose every dot gets a greedily decoded move checked for legality.
    legal_move_games: int = 100
    batch_size: int = 64
    workers: int = 2
    # Settings that score other features: a run with either changed is another experiment, written to
    # its own results folder, as is a run without the floor or the legal moves (task.result_variant).
    # The rest change how much is measured (games, extra probes) or how fast, and are recorded in the
    # result's config.
    OTHER_FEATURES = ("layer", "site")
    # Settings that change how much the numbers rest on: a run with other values than the result it
    # would replace is refused before any work (core.results.refuse_other_measurement), so a quick
    # ARGS="probe_games=100" never writes over the full evaluation.
    MEASUREMENT = ("probe_games", "legal_move_games")
    ZERO_MEANS_PRESET = ("probe_games",)  # said so when a refusal names it

    def __post_init__(self):
        if self.site not in ("mlp", "resid", "attn"):
            raise ValueError(f"site {self.site!r} unknown; choose mlp, resid or attn")
        if self.probe_layers not in ("site", "all"):
            raise ValueError(f"probe_layers {self.probe_layers!r} unknown; choose site or all")
        for name, least in (("probe_games", 0), ("legal_move_games", 0), ("batch_size", 1), ("workers", 1)):
            if getattr(self, name) < least:
                raise ValueError(f"{name}={getattr(self, name)} is below {least}; write {name}=<an integer >= {least}>")
