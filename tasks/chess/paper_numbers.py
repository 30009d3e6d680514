"""Published chess numbers to print beside ours (docs/moex.md section 9, docs/chess.md section 15).

The paper's models are 8 x 512 trained on 16M lichess games; ours are far smaller and trained on
engine games, so these are a reference point, not a target.
"""

# MoE-X paper, Table 1 (activated parameters equal): val loss, coverage, reconstruction.
PAPER_TABLE_1 = {
    "dense": {"source": "MoE-X Table 1, GELU (GPT-2)", "val_loss": 0.213, "coverage": 0.356, "reconstruction": 0.608},
    "dense-relu": {"source": "MoE-X Table 1, ReLU", "val_loss": 0.215, "coverage": 0.312, "reconstruction": 0.581},
    "switch": {"source": "MoE-X Table 1, Switch", "val_loss": 0.212, "coverage": 0.424, "reconstruction": 0.734},
    "moex": {"source": "MoE-X Table 1, MoE-X", "val_loss": 0.211, "coverage": 0.428, "reconstruction": 0.840},
    # Table 4 (upcycling): coverage / reconstruction.
    "dense-continued": {"source": "MoE-X Table 4, dense continued", "coverage": 0.377, "reconstruction": 0.674},
    "moex-upcycled": {"source": "MoE-X Table 4, MoE-X upcycled", "coverage": 0.428, "reconstruction": 0.840},
    # Table 3 ablation corners (coverage / reconstruction only).
    "switch-relu": {"source": "MoE-X Table 3, ReLU experts only", "coverage": 0.418, "reconstruction": 0.829},
    "moex-gelu": {"source": "MoE-X Table 3, sparsity router only", "coverage": 0.404, "reconstruction": 0.740},
}


def comparable(preset: str) -> dict:
    """Table 1 as far as a preset's numbers can sit beside it: the paper's validation loss is nats per
    SAN character, so a move-format preset (nats per move) shows only coverage and reconstruction."""
    from tasks.chess.presets import PRESETS

    if preset in PRESETS and PRESETS[preset].format != "chars":
        return {m: {k: v for k, v in row.items() if k != "val_loss"} for m, row in PAPER_TABLE_1.items()}
    return PAPER_TABLE_1


# Table 4 (upcycling) as printed: its MoE-X row is the one trained from scratch, which Table 1's is not.
PAPER_TABLE_4 = {
    "dense": {"coverage": 0.356, "reconstruction": 0.608},
    "dense-continued": {"coverage": 0.377, "reconstruction": 0.674},
    "moex": {"coverage": 0.398, "reconstruction": 0.657},
    "moex-upcycled": {"coverage": 0.428, "reconstruction": 0.840},
}

# Karvonen et al. Table 1 (board state, residual stream after block 5 of 8).
KARVONEN = {
    "linear probe": {"coverage": 0.98, "reconstruction": 0.98},
    "best SAE": {"coverage": 0.48, "reconstruction": 0.85},
    "SAE on random-init model": {"coverage": 0.11, "reconstruction": 0.01},
}
