"""Language presets: model shape, tokenizer, training recipe and evaluation sizes.

`tiny` is for tests (seconds), `tiny-gpt2` the same with GPT-2's BPE (for GPT-2 checkpoints from
disk); `cpu` the embedded default, 6 x 128 with context 256 on the embedded corpus (1.5-2 hours
per model on one thread here); `paper` the MoE-X paper's Table 7 Small (12 x 768, GPT-2 BPE,
context 1024), for a GPU. Adapters derive their own shape from the dense form, as in chess.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from models.config import TrainConfig
from tasks.language.autointerp.sampling import SamplingRules


@dataclass(frozen=True)
class LanguagePreset:
    n_layers: int
    n_heads: int
    d_model: int
    n_ctx: int
    tokenizer: str
    train: TrainConfig
    n_val_seqs: int         # held-out sequences for validation loss and perplexity
    n_interp_seqs: int      # further held-out sequences whose activations auto-interp reads
    n_interp_features: int  # features scored per model (the paper: 1000 random features)
    sampling: SamplingRules  # examples per feature; delphi's 40 / 5 per decile / 50, except at tiny

    def model_shape(self, vocab_size: int) -> dict:
        return {"vocab_size": vocab_size, "n_ctx": self.n_ctx, "d_model": self.d_model,
                "n_layers": self.n_layers, "n_heads": self.n_heads, "d_mlp": 4 * self.d_model}


PRESETS = {
    "tiny": LanguagePreset(
        n_layers=4, n_heads=2, d_model=32, n_ctx=64, tokenizer="bpe-4096",
        train=TrainConfig(steps=30, batch_size=8, lr=3e-3, min_lr=3e-4, warmup_steps=5, eval_every=15,
                          checkpoint_every_s=60),
        n_val_seqs=16, n_interp_seqs=512, n_interp_features=16,
        sampling=SamplingRules(n_explain=10, n_test_per_decile=1, n_negative=10, min_activating=20)),
    "cpu": LanguagePreset(
        n_layers=6, n_heads=4, d_model=128, n_ctx=256, tokenizer="bpe-4096",
        train=TrainConfig(steps=3000, batch_size=32, lr=2e-3, min_lr=2e-4, warmup_steps=100, bf16=False,
                          eval_every=300, checkpoint_every_s=180),
        n_val_seqs=256, n_interp_seqs=2048, n_interp_features=200, sampling=SamplingRules()),
    "paper": LanguagePreset(
        n_layers=12, n_heads=12, d_model=768, n_ctx=1024, tokenizer="gpt2",
        train=TrainConfig(steps=100_000, batch_size=320, lr=3e-4, min_lr=3e-5, warmup_steps=5000, bf16=True,
                          weight_decay=0.1, eval_every=2000, checkpoint_every_s=600),
        n_val_seqs=512, n_interp_seqs=8192, n_interp_features=1000, sampling=SamplingRules()),
}
# tiny's sizes with GPT-2's BPE: for scoring small GPT-2-family checkpoints from disk in tests.
PRESETS["tiny-gpt2"] = replace(PRESETS["tiny"], tokenizer="gpt2")
