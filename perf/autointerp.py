"""Auto-interp speed and memory, for `make perf`.

- Lexical features per second once activations are cached: explanation + detection + fuzzing of
  synthetic features (40 explanation, 50 + 50 test windows of 32 tokens each).
- Activation caching: tokens per second and peak resident memory of the window-maxima pass over a
  random sparse "model" with 16,384 features, at two token counts 10x apart, each in a fresh
  process so its peak memory is its own. Flat memory means the activations are streamed, not held.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from perf.peak_memory import own_peak_rss_mib


def lexical_features_per_second(n_features: int = 100, seed: int = 0) -> float:
    from tasks.language.autointerp.backend import Example
    from tasks.language.autointerp.lexical import LexicalBackend
    from tasks.language.autointerp.protocol import FeatureExamples, score_feature

    rng = np.random.default_rng(seed)
    vocab = [f" w{i}" for i in range(2000)]

    def window(decile=None, active=True) -> Example:
        tokens = tuple(vocab[i] for i in rng.integers(0, len(vocab), 32))
        acts = (rng.random(32) * (rng.random(32) < 0.1)).astype(np.float32) if active else np.zeros(32, np.float32)
        return Example(tokens, acts, decile)

    features = [FeatureExamples(f, [window(d // 4) for d in range(40)], [window(d // 5) for d in range(50)],
                                [window(active=False) for _ in range(50)]) for f in range(n_features)]
    backend = LexicalBackend()
    start = time.perf_counter()
    for fx in features:
        score_feature(backend, fx, rng)
    return n_features / (time.perf_counter() - start)


def _caching_run(n_tokens: int, n_features: int, n_score: int) -> dict:
    """One caching pass in this process: tokens/s and peak RSS (MiB)."""
    from tasks.language.autointerp.activation_cache import window_maxima

    torch.manual_seed(0)
    embed = torch.randn(4096, 64)
    proj = torch.randn(64, n_features) / 8

    def feature_fn(tokens: torch.Tensor) -> torch.Tensor:  # sparse, like SAE latents: most are zero
        return torch.relu(embed[tokens] @ proj - 2.0)

    seqs = np.random.default_rng(0).integers(0, 4096, size=(n_tokens // 256, 256))
    features = np.sort(np.random.default_rng(1).choice(n_features, n_score, replace=False))
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        window_maxima(feature_fn, seqs, 32, features, Path(tmp) / "max.npy", batch_size=8)
        seconds = time.perf_counter() - start
    return {"tokens": int(seqs.size), "features": n_features, "scored_features": n_score,
            "tokens_per_second": seqs.size / seconds,
            "peak_rss_mib": own_peak_rss_mib()}


def caching_scaling(token_counts=(100_000, 1_000_000), n_features: int = 16_384, n_score: int = 1000,
                    threads: int = 1) -> list[dict]:
    runs = []
    for n in token_counts:
        out = subprocess.run([sys.executable, "-m", "perf.autointerp", "--cache-tokens", str(n),
                              "--cache-features", str(n_features), "--score", str(n_score), "--threads", str(threads)],
                             capture_output=True, text=True, check=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return runs


if __name__ == "__main__":
    from core.arguments import OneLineParser

    parser = OneLineParser()
    parser.add_argument("--cache-tokens", type=int, required=True)
    parser.add_argument("--cache-features", type=int, default=16_384)
    parser.add_argument("--score", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(json.dumps(_caching_run(args.cache_tokens, args.cache_features, args.score)))
