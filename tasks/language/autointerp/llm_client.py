"""A client for any OpenAI-compatible chat-completions endpoint (vLLM, llama.cpp server, Ollama, hosted).

Every answer is cached on disk, keyed by what determines it (endpoint, model, messages, sampling), so
a rerun costs no request. An endpoint that cannot be reached, times out or answers 5xx/429 is retried
with exponential backoff; when the retries run out the run stops with one BenchError line naming the
endpoint and the fix. Nothing is ever made up in place of an answer.

The API key is read from an environment variable at request time and goes only into the
Authorization header: never into the config, the cache, an error message or a log.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from core.errors import BenchError
from core.paths import CACHE

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class LLMConfig:
    # The endpoint's OpenAI base, ending in /v1: requests go to {base_url}/chat/completions.
    base_url: str = "http://127.0.0.1:8080/v1"
    model: str = "local"
    # Name of the environment variable holding the key; unset or empty means no key is sent.
    api_key_env: str = "MOEXBENCH_LLM_API_KEY"
    max_concurrency: int = 4
    timeout_s: float = 120.0
    # Retries after the first attempt; waits are backoff_s, 2 x backoff_s, 4 x backoff_s, ...
    max_retries: int = 3
    backoff_s: float = 1.0
    temperature: float = 0.0
    max_tokens: int = 256
    # "" means .cache/llm (or $MOEXBENCH_CACHE/llm)
    cache_dir: str = ""
    # Send each request's JSON schema as `response_format`; off for an endpoint that rejects it.
    constrained: bool = True

    def __post_init__(self):
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url {self.base_url!r} must start with http:// or https://")
        if self.max_concurrency < 1 or self.max_retries < 0 or self.max_tokens < 1:
            raise ValueError("max_concurrency and max_tokens must be >= 1, max_retries >= 0")
        if self.timeout_s <= 0 or self.backoff_s < 0 or self.temperature < 0:
            raise ValueError("timeout_s must be > 0, backoff_s and temperature >= 0")

    @property
    def cache_path(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir else CACHE / "llm"


class _Transient(Exception):
    """A failure worth retrying (refused, timed out, 5xx, 429); its text names the cause, and
    `retry_after` the wait the server asked for (seconds; 0 when it asked none)."""

    def __init__(self, message: str, retry_after: float = 0.0):
        super().__init__(message)
        self.retry_after = retry_after


# A chat completion of max_tokens is a few KB; a server streaming more is not answering.
MAX_RESPONSE_BYTES = 1 << 20
# The longest wait a Retry-After can ask for; a longer request is cut to this.
MAX_RETRY_AFTER_S = 60.0


def _retry_after(headers) -> float:
    try:
        return min(MAX_RETRY_AFTER_S, max(0.0, float(headers.get("Retry-After", 0))))
    except (TypeError, ValueError):  # an HTTP date, or junk: fall back to our own backoff
        return 0.0


class ChatClient:
    """Thread-safe: at most `max_concurrency` requests are in flight, however many threads call."""

    def __init__(self, config: LLMConfig):
        self.config = config
        self._slots = threading.BoundedSemaphore(config.max_concurrency)
        self._opener = opener_for(config.base_url)
        self._lock = threading.Lock()
        self.requests_sent = 0     # HTTP attempts, retries included
        self.cache_hits = 0

    # --- public -----------------------------------------------------------------------------

    def complete(self, messages: Messages, accept: Callable[[str], bool] | None = None,
                 response_format: dict | None = None) -> str:
        """The assistant's text for `messages` (from the cache when present). With `accept`, only an
        answer it accepts is cached (or taken from the cache): an unparseable reply is returned for
        the caller to count, and asked again on the next run, never replayed as a good one. A
        `response_format` (a JSON schema for the answer) is sent when the config is `constrained`."""
        payload = self._payload(messages, response_format if self.config.constrained else None)
        key = cache_key(self.config.base_url, payload)
        cached = self._cache_read(key)
        if cached is not None and (accept is None or accept(cached)):
            with self._lock:
                self.cache_hits += 1
            return cached
        with self._slots:
            text = self._post_with_retries(payload)
        if accept is None or accept(text):
            self._cache_write(key, payload, text)
        return text

    def complete_many(self, conversations: list[Messages], accepts: list[Callable[[str], bool]] | None = None,
                      formats: list[dict] | None = None) -> list[str]:
        """`complete` for each, in order, `max_concurrency` at a time."""
        accepts = accepts or [None] * len(conversations)
        formats = formats or [None] * len(conversations)
        if len(conversations) <= 1:
            return [self.complete(m, a, f) for m, a, f in zip(conversations, accepts, formats)]
        with ThreadPoolExecutor(max_workers=self.config.max_concurrency) as pool:
            return list(pool.map(self.complete, conversations, accepts, formats))

    # --- request ----------------------------------------------------------------------------

    def _payload(self, messages: Messages, response_format: dict | None = None) -> dict:
        payload = {"model": self.config.model, "messages": messages,
                   "temperature": self.config.temperature, "max_tokens": self.config.max_tokens}
        if response_format is not None:
            payload["response_format"] = response_format
        return payload

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = os.environ.get(self.config.api_key_env, "")
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _post_with_retries(self, payload: dict) -> str:
        cfg = self.config
        url = cfg.base_url.rstrip("/") + "/chat/completions"
        body = json.dumps(payload).encode()
        last, wait = "", 0.0
        for attempt in range(cfg.max_retries + 1):
            if attempt:
                time.sleep(max(wait, cfg.backoff_s * 2 ** (attempt - 1)))
            with self._lock:
                self.requests_sent += 1
            try:
                return self._post_once(url, body)
            except _Transient as e:
                last, wait = str(e), e.retry_after
        attempts = cfg.max_retries + 1
        raise BenchError(f"LLM endpoint {url} gave no answer in {attempts} attempt{'s' * (attempts > 1)} "
                         f"({last}); start the server or set llm_base_url to a reachable OpenAI-compatible "
                         f"endpoint")

    def _post_once(self, url: str, body: bytes) -> str:
        """One request under one deadline: timeout_s bounds reading the answer as a whole, not each
        socket read, so a server dripping a byte a second cannot hold a run. (Connecting and the
        status line are bounded per socket operation, by timeout_s each.)"""
        request = urllib.request.Request(url, data=body, headers=self._headers(), method="POST")
        deadline = time.monotonic() + self.config.timeout_s
        try:
            with self._opener.open(request, timeout=self.config.timeout_s) as response:
                if time.monotonic() > deadline:
                    raise _Transient(f"no whole answer within {self.config.timeout_s:g} s")
                raw = _read_before(response, deadline, self.config.timeout_s)
        except urllib.error.HTTPError as e:
            if e.code >= 500 or e.code == 429:
                raise _Transient(f"HTTP {e.code}", _retry_after(e.headers)) from None
            fix = {401: f"set the key in ${self.config.api_key_env}",
                   403: f"check the key in ${self.config.api_key_env}",
                   404: "check base_url (it should end in /v1) and the model name"}.get(
                e.code, "check base_url, model and the sampling settings (an endpoint without structured "
                        "output rejects response_format: set llm_constrained=false)")
            raise BenchError(f"LLM endpoint {url} answered HTTP {e.code} for model "
                             f"{self.config.model!r}; {fix}") from None
        except (TimeoutError, socket.timeout):
            raise _Transient(f"no answer within {self.config.timeout_s:g} s") from None
        except urllib.error.URLError as e:
            if isinstance(e.reason, (TimeoutError, socket.timeout)):
                raise _Transient(f"no answer within {self.config.timeout_s:g} s") from None
            raise _Transient(f"unreachable: {e.reason}") from None
        except (OSError, http.client.HTTPException) as e:   # reset, closed mid-answer, not HTTP
            raise _Transient(f"connection failed: {e.__class__.__name__}") from None
        return self._content(raw, url)

    def _content(self, raw: bytes, url: str) -> str:
        """The message text of a chat-completions response. A body of another shape means the
        endpoint is not what base_url claims (an HTML page, a different API): retried, since proxies
        sometimes answer so while a server starts, then reported."""
        try:
            message = json.loads(raw)["choices"][0]["message"]
            content = message.get("content")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise _Transient(f"answer is not a chat completion: {raw[:60]!r}") from None
        # A reply with no text (e.g. cut off while reasoning) is an answer the parsers will reject.
        return content if isinstance(content, str) else ""

    # --- cache ------------------------------------------------------------------------------

    def _cache_file(self, key: str) -> Path:
        return self.config.cache_path / key[:2] / f"{key}.json"

    def _cache_read(self, key: str) -> str | None:
        try:
            record = json.loads(self._cache_file(key).read_text())
            return record["response"] if isinstance(record.get("response"), str) else None
        except (OSError, ValueError, AttributeError):
            return None

    def _cache_write(self, key: str, payload: dict, text: str) -> None:
        path = self._cache_file(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {"base_url": self.config.base_url, "request": payload, "response": text}
        # A unique temp name: two threads may answer the same prompt at once.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(record, f, ensure_ascii=False, indent=1)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _read_before(response, deadline: float, timeout_s: float) -> bytes:
    chunks, size = [], 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise _Transient(f"no whole answer within {timeout_s:g} s")
        sock = getattr(getattr(getattr(response, "fp", None), "raw", None), "_sock", None)
        if sock is not None:
            sock.settimeout(left)
        try:
            chunk = response.read1(4096) if hasattr(response, "read1") else response.read(4096)
        except (TimeoutError, socket.timeout):
            raise _Transient(f"no whole answer within {timeout_s:g} s") from None
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise _Transient(f"answer longer than {MAX_RESPONSE_BYTES} bytes")
        chunks.append(chunk)


def opener_for(url: str) -> urllib.request.OpenerDirector:
    """urllib's opener, except that a server on this machine is reached directly: an HTTP(S)_PROXY
    set for the outside world (as on many CI runners) must not swallow requests to 127.0.0.1."""
    if urllib.parse.urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1"):
        return urllib.request.build_opener(urllib.request.ProxyHandler({}))
    return urllib.request.build_opener()


def cache_key(base_url: str, payload: dict) -> str:
    """sha256 over the endpoint, model, messages and sampling settings (never the key)."""
    blob = json.dumps({"base_url": base_url.rstrip("/"), **payload}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()
