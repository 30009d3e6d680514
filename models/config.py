"""Model and training configs: plain frozen dataclasses, importable without torch or TransformerLens
so the CLI can validate a request before loading anything heavy."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

ACTIVATION_NAMES = ("gelu", "relu")


@dataclass(frozen=True)
class GPTConfig:
    vocab_size: int
    n_ctx: int
    d_model: int
    n_layers: int
    n_heads: int
    d_mlp: int
    act_fn: str = "gelu"
    # Which MLP the blocks use; "dense" is built here, others are registered by their modules.
    mlp: str = "dense"
    # Extra settings for non-dense MLPs (expert count, router, ...) as a sorted tuple of pairs,
    # so the config stays hashable and round-trips through JSON.
    mlp_options: tuple = ()

    def __post_init__(self):
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}")
        if self.act_fn not in ACTIVATION_NAMES:
            raise ValueError(f"act_fn {self.act_fn!r} unknown; choose one of {', '.join(ACTIVATION_NAMES)}")

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    def to_json(self) -> dict:
        out = asdict(self)
        out["mlp_options"] = [list(kv) for kv in self.mlp_options]
        return out

    @classmethod
    def from_json(cls, data: dict) -> "GPTConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model config fields {sorted(unknown)}")
        data = dict(data)
        data["mlp_options"] = tuple(tuple(kv) for kv in data.get("mlp_options", ()))
        return cls(**data)


@dataclass(frozen=True)
class TrainConfig:
    steps: int
    batch_size: int
    lr: float
    min_lr: float
    warmup_steps: int
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    bf16: bool = False  # autocast matmuls to bf16; master weights and optimizer stay fp32
    eval_every: int = 200
    checkpoint_every_s: float = 180.0
    seed: int = 0
