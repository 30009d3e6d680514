"""Settings of the language evaluation (each can be overridden with ARGS="key=value ...")."""

from __future__ import annotations

from dataclasses import dataclass

BACKENDS = ("lexical", "llm")


@dataclass(frozen=True)
class LanguageConfig:
    # A run with other values than the result it would replace is refused before any work (a sample of
    # 20 features never writes over the 200-feature evaluation): core.results.refuse_other_measurement.
    MEASUREMENT = ("n_features", "negatives")
    ZERO_MEANS_PRESET = ("n_features",)  # said so when a refusal names it
    # Settings that score other features: a run with another value writes to its own results folder.
    OTHER_FEATURES = ("layer", "site")
    # Block whose features are scored; negative counts from the end: -3 is block 3 of the cpu preset's
    # 6 and block 9 of the paper preset's 12 (the MoE-X paper scored its "8th layer": block 7 counted
    # from 0, ARGS="layer=7").
    layer: int = -3
    site: str = "mlp"  # or "resid", "attn", as for chess (tasks/chess/config.py)
    # "lexical": deterministic and offline (the default, what `make regress MODE=tiny` checks); "llm": an OpenAI-
    # compatible endpoint, configured below (key from the environment only). Never mixed.
    backend: str = "lexical"
    # 0 means the preset's number.
    n_features: int = 0
    # "verified" (the protocol) or "weakest": see tasks/language/autointerp/sampling.py.
    negatives: str = "verified"
    # "local" starts llama.cpp's server on this machine for the run (tasks/language/autointerp/local_server.py),
    # with one request in flight and a timeout of at least 600 s.
    llm_base_url: str = "http://127.0.0.1:8080/v1"
    llm_model: str = "SmolLM2-135M-Instruct.Q4_1"  # what the local server (local_server.py) serves
    llm_concurrency: int = 1
    llm_timeout_s: float = 60.0
    # Send each request's JSON schema as response_format (llama.cpp, vLLM, OpenAI); false for an
    # endpoint that rejects it (its answers are then parsed as plain text).
    llm_constrained: bool = True
    # Also score the same architecture at random init, through the same sampling and backend: the floor
    # detection and fuzzing are read against (a random network's units already detect tokens).
    random_floor: bool = True
    batch_size: int = 8

    def __post_init__(self):
        if self.site not in ("mlp", "resid", "attn"):
            raise ValueError(f"site {self.site!r} unknown; choose mlp, resid or attn")
        if self.negatives not in ("verified", "weakest"):
            raise ValueError(f"negatives {self.negatives!r} unknown; choose verified or weakest")
        if self.llm_base_url != "local" and not self.llm_base_url.startswith(("http://", "https://")):
            raise ValueError(f"llm_base_url {self.llm_base_url!r} must start with http:// or https://, or be local")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend {self.backend!r} unknown; choose one of {', '.join(BACKENDS)}")
        if self.n_features < 0 or self.batch_size < 1 or self.llm_concurrency < 1 or \
                not 0 < self.llm_timeout_s < float("inf"):
            raise ValueError("n_features must be >= 0; batch_size and llm_concurrency >= 1; llm_timeout_s a finite "
                             "number of seconds > 0")
