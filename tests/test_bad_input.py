"""The bad-input matrix: each row is a hostile input to the real command line, and each must end in
exit status 2, one `error:` line naming the file, field or value, no traceback, and the results and
checkpoints left byte for byte as they were. Refusals that must also come before any work are in
tests/test_early_refusal.py."""

import json
import lzma
import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from core.own_data import variant_for
from tests.bad_input_sandbox import BENCH_TINY, TRAIN_TINY, Sandbox, tree_digest


def _xz(path: Path, text: str) -> None:
    with lzma.open(path, "wt", encoding="utf-8") as f:
        f.write(text)


def _patch_json(path: Path, change) -> None:
    path.write_text(json.dumps(change(json.loads(path.read_text()))))


def _ckpt_json(value):
    return lambda s: s.stem.with_suffix(".json").write_text(value)


def _zero_weights(s):
    path = s.stem.with_suffix(".safetensors")
    data = bytearray(path.read_bytes())
    data[-4096:] = bytes(4096)
    path.write_bytes(bytes(data))


def _drop_metric(s):
    s.write_result("dense", 0, {"reconstruction": 0.1})
    s.write_result("dense", 1, {"coverage": 0.2, "reconstruction": 0.1})


def _fresh_model_json_gone(s):
    s.stem.with_suffix(".json").unlink()


def _bad_state(s):
    run = s.root / "runs" / "chess" / f"dense-tiny-seed0-{variant_for(s.data)}"  # the sandbox's games are its own
    run.mkdir(parents=True)
    (run / "state.safetensors").write_bytes(b"{not a state")
    s.stem.with_suffix(".json").unlink()
    s.stem.with_suffix(".safetensors").unlink()


def _prose_corpus(s):
    _xz(s.data / "train.txt.xz", ";1.e4 e5 2.Nf3\nThe quick brown fox jumps over the lazy dog.\n")
    for suffix in (".json", ".safetensors"):
        s.stem.with_suffix(suffix).unlink()


def _illegal_corpus(s):
    _xz(s.data / "train.txt.xz", ";1.e4 e5\n;1.e4 e5 2.Ke4\n")
    for suffix in (".json", ".safetensors"):
        s.stem.with_suffix(suffix).unlink()


def _full_evaluation_stored(s):
    # The sandbox's games are a folder of their own (MOEXBENCH_CHESS_DATA): runs on them write to its variant.
    path = s.write_result("dense", 0, {"coverage": 0.1})
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "config": {"probe_games": 0, "legal_move_games": 100}}))


def _corpus_not_xz(s):
    (s.data / "probe_test.txt.xz").write_text(";1.e4 e5\n")


# (id, how to break the sandbox, command line, what the one error line must contain)
ROWS = [
    ("unknown-model", None, ("bench", "--model", "nonesuch"), ["unknown model 'nonesuch'"]),
    ("unknown-key", None, BENCH_TINY + ("layr=3",), ["unknown setting 'layr'"]),
    ("bad-value-type", None, BENCH_TINY + ("probe_games=many",), ["probe_games='many' is not a valid int"]),
    ("negative-legal-games", None, BENCH_TINY + ("legal_move_games=-1",), ["legal_move_games=-1 is below 0"]),
    ("unknown-device", None, BENCH_TINY + ("--device", "foo"), ["device 'foo'"]),
    ("llm-timeout-nan", None, ("bench", "--task", "language", "--preset", "tiny", "llm_timeout_s=nan"),
     ["llm_timeout_s a finite number"]),
    ("llm-timeout-inf", None, ("bench", "--task", "language", "--preset", "tiny", "llm_timeout_s=inf"),
     ["llm_timeout_s a finite number"]),
    ("report-variant-path", None, ("report", "--task", "chess", "--preset", "tiny", "--variant", "../language"),
     ["variant '../language' is not a plain name"]),
    ("report-no-results", None, ("report", "--task", "chess", "--preset", "paper"), ["no results in", "paper"]),
    ("report-metric-missing-in-a-seed", _drop_metric, ("report", "--task", "chess", "--preset", "tiny"),
     ["dense.json: metric 'coverage' is missing while another seed"]),
    ("report-metric-string", lambda s: s.write_result("dense", 0, {"coverage": "high"}),
     ("report", "--task", "chess", "--preset", "tiny"), ["dense.json: metric 'coverage' is 'high'"]),
    ("report-metric-null", lambda s: s.write_result("dense", 0, {"coverage": None}),
     ("report", "--task", "chess", "--preset", "tiny"), ["metric 'coverage' is None"]),
    ("report-metrics-list", lambda s: s.write_result("dense", 0, [0.1, 0.2]),
     ("report", "--task", "chess", "--preset", "tiny"), ["dense.json: metrics is a list"]),
    ("checkpoint-json-empty-object", _ckpt_json("{}"), BENCH_TINY, ["dense-tiny.json has no model_config"]),
    ("checkpoint-json-list", _ckpt_json("[]"), BENCH_TINY, ["dense-tiny.json has no model_config"]),
    ("checkpoint-json-wrong-type", _ckpt_json('{"model_config": {"d_model": "wide"}}'), BENCH_TINY,
     ["dense-tiny.json: model_config is not a model config"]),
    ("checkpoint-json-not-utf8", lambda s: s.stem.with_suffix(".json").write_bytes(b"\xff\xfe{"), BENCH_TINY,
     ["dense-tiny.json is not valid JSON"]),
    ("checkpoint-weights-zeroed", _zero_weights, BENCH_TINY, ["dense-tiny.safetensors does not match the sha256"]),
    ("checkpoint-weights-random", lambda s: s.stem.with_suffix(".safetensors").write_bytes(os.urandom(5000)),
     BENCH_TINY, ["does not match the sha256"]),
    ("checkpoint-json-gone", _fresh_model_json_gone, BENCH_TINY,
     ["dense-tiny.safetensors exists but dense-tiny.json beside it does not"]),
    # a fresh clone has no run to resume: training again would replace the weights the results came from
    ("train-over-a-finished-checkpoint", None, TRAIN_TINY,
     ["dense-tiny.safetensors is already trained", "delete dense-tiny.json and its weights"]),
    ("resume-state-garbled", _bad_state, TRAIN_TINY, ["resume state", "state.safetensors is unreadable"]),
    ("corpus-prose", _prose_corpus, TRAIN_TINY, ["train.txt.xz:2: character 'T' is not in the chess vocabulary"]),
    ("corpus-illegal-move", _illegal_corpus, ("train", "--model", "dense", "--task", "chess", "--preset",
                                              "tiny-moves", "--threads", "1"),
     ["train.txt.xz:2: ply 3: 'Ke4' is not a legal move", "tasks.chess.own_games` writes games of your own"]),
    ("corpus-illegal-move-chars", _illegal_corpus, TRAIN_TINY,
     ["train.txt.xz:2: ply 3: 'Ke4' is not a legal move", "tasks.chess.own_games` writes games of your own"]),
    ("corpus-not-xz", _corpus_not_xz, BENCH_TINY, ["probe_test.txt.xz: not a readable xz chess corpus"]),
    # a quick look on fewer probe games must not write over the full evaluation
    ("smaller-run-over-a-full-result", _full_evaluation_stored,
     ("bench", "--model", "dense", "--task", "chess", "--preset", "tiny", "--threads", "1", "probe_games=20"),
     ["dense.json was measured with other settings (probe_games=0 (the preset's number) there, 20 now)",
      "MOEXBENCH_RESULTS"]),
]


@pytest.mark.parametrize("breaks, argv, needles", [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_bad_input_row(tmp_path, tiny_checkpoint, breaks, argv, needles):
    sandbox = Sandbox(tmp_path, tiny_checkpoint)
    if breaks is not None:
        breaks(sandbox)
    before = tree_digest(sandbox.results, sandbox.checkpoints)
    out = sandbox.run(*argv)
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == 2, out.stderr[-3000:]
    assert "Traceback" not in out.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr[-3000:]
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert tree_digest(sandbox.results, sandbox.checkpoints) == before


def test_a_run_refused_for_other_settings_computes_nothing_first(tmp_path, tiny_checkpoint):
    """The refusal comes before the task's own preparation: no position labels land in the cache."""
    sandbox = Sandbox(tmp_path, tiny_checkpoint)
    _full_evaluation_stored(sandbox)
    out = sandbox.run("bench", "--model", "dense", "--task", "chess", "--preset", "tiny", "--threads", "1",
                      "probe_games=20", "workers=2")
    assert out.returncode == 2 and "measured with other settings" in out.stderr, out.stderr[-3000:]
    assert not (tmp_path / "cache").exists()


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _NonsenseServer:
    """An OpenAI-style endpoint on 127.0.0.1 whose every answer is prose no parser can read."""

    def __init__(self):
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                body = json.dumps({"choices": [{"message": {"role": "assistant", "content": "Bananas."}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


LLM_BENCH = ("bench", "--model", "dense", "--task", "language", "--preset", "tiny", "--threads", "1",
             "backend=llm", "negatives=weakest", "n_features=4", "llm_timeout_s=3")


def test_an_llm_endpoint_that_is_down_is_one_line(tmp_path, tiny_checkpoint):
    sandbox = Sandbox(tmp_path, tiny_checkpoint)
    before = tree_digest(sandbox.results, sandbox.checkpoints)
    url = f"http://127.0.0.1:{_dead_port()}/v1"
    out = sandbox.run(*LLM_BENCH, f"llm_base_url={url}")
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert out.stderr.strip().splitlines()[-1].startswith(f"error: LLM endpoint {url}/chat/completions gave no answer")
    assert tree_digest(sandbox.results, sandbox.checkpoints) == before


def test_an_llm_answering_nonsense_scores_nothing_and_fails_naming_why(tmp_path, tiny_checkpoint):
    sandbox, server = Sandbox(tmp_path, tiny_checkpoint), _NonsenseServer()
    try:
        before = tree_digest(sandbox.results, sandbox.checkpoints)
        out = sandbox.run(*LLM_BENCH, f"llm_base_url={server.base_url}")
    finally:
        server.server.shutdown()
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-2000:]
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("error: auto-interp scored none of the 4 features sampled") and \
        "without a parseable explanation" in last, last
    assert tree_digest(sandbox.results, sandbox.checkpoints) == before
    assert not list((sandbox.root / "cache").rglob("llm/**/*.json"))  # nonsense is never cached


def _damaged_sae_folder(tmp_path: Path, damage) -> Path:
    """A SAELens SAE folder for the tiny dense model's MLP (128 wide), then damaged."""
    from sae_lens import TopKSAE, TopKSAEConfig
    from sae_lens.saes.sae import SAEMetadata

    folder = tmp_path / "sae"
    sae = TopKSAE(TopKSAEConfig(d_in=128, d_sae=256, k=8, metadata=SAEMetadata(hook_name="blocks.1.mlp.hook_post")))
    sae.save_model(str(folder))
    damage(folder)
    return folder


def _cfg_with(**changes):
    def damage(folder):
        cfg = json.loads((folder / "cfg.json").read_text())
        (folder / "cfg.json").write_text(json.dumps({**cfg, **changes}))
    return damage


@pytest.mark.parametrize("damage, needle", [
    (lambda f: (f / "cfg.json").write_text("{not json"), "SAE folder {folder} is damaged"),
    (lambda f: (f / "sae_weights.safetensors").write_bytes((f / "sae_weights.safetensors").read_bytes()[:999]),
     "SAE folder {folder} is damaged"),
    (_cfg_with(architecture="weird"), "{folder}/cfg.json: architecture 'weird' is not one SAELens knows"),
    (_cfg_with(d_in=64), "SAE folder {folder} is damaged (RuntimeError: "),  # torch's message spans lines
], ids=["sae-cfg-garbled", "sae-weights-truncated", "sae-architecture-unknown", "sae-d_in-not-the-weights"])
def test_a_damaged_sae_folder_is_one_line(tmp_path, tiny_checkpoint, damage, needle):
    sandbox = Sandbox(tmp_path, tiny_checkpoint)
    folder = _damaged_sae_folder(tmp_path, damage)
    before = tree_digest(sandbox.results, sandbox.checkpoints, folder)
    out = sandbox.run("bench", "--model", "dense+sae", "--task", "chess", "--preset", "tiny", "--threads", "1",
                      "random_floor=false", env={**sandbox.env(), "MOEXBENCH_SAE_PATH": str(folder)})
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-2000:]
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: " + needle.format(folder=folder)), lines
    # your own folder is never retrained here: the fix is to save it again, not to delete it
    assert lines[0].endswith("save it again with SAELens' save_inference_model, or give another folder"), lines
    assert tree_digest(sandbox.results, sandbox.checkpoints, folder) == before


def _bom_blocks(tmp_path):
    from tasks.chess.corpus import load_blocks

    (tmp_path / "b.txt").write_bytes(b"\xef\xbb\xbf;1.e4 e5\n")
    return load_blocks(tmp_path / "b.txt")


def _non_ascii_blocks(tmp_path):
    from tasks.chess.corpus import load_blocks

    (tmp_path / "b.txt").write_text(";1.e4 e5\n;1.d4 d5 2.c4 é\n", encoding="utf-8")
    return load_blocks(tmp_path / "b.txt")


def _empty_blocks(tmp_path):
    from tasks.chess.corpus import load_blocks

    (tmp_path / "b.txt").write_text("\n\n")
    return load_blocks(tmp_path / "b.txt")


def _bom_only_text(tmp_path):
    from tasks.language.corpus import load_text_files

    (tmp_path / "t.txt").write_bytes(b"\xef\xbb\xbf  \n")
    return load_text_files([tmp_path / "t.txt"])


def _text_folder(tmp_path):
    from tasks.language.corpus import load_text_files

    return load_text_files([tmp_path])


def _record_without_text(tmp_path):
    from tasks.language.corpus import read_records

    with lzma.open(tmp_path / "heldout.jsonl.xz", "wt") as f:
        f.write(json.dumps({"id": 1, "source": "x", "text": "fine"}) + "\n" + json.dumps({"id": 2}) + "\n")
    return read_records("heldout", tmp_path)


def _sae_record_truncated(tmp_path):
    from bench.sae_training import read_record

    (tmp_path / "moexbench.json").write_text('{"settings": {"k": ')
    return read_record(tmp_path)


def _corpus_with_empty_line(tmp_path):
    from tasks.chess.corpus import read_games_file

    _xz(tmp_path / "g.txt.xz", ";1.e4 e5\n\n;1.d4\n")
    return read_games_file(tmp_path / "g.txt.xz")


# Entry points a researcher calls from Python (their own games and text): the same one-line errors.
LIBRARY_ROWS = [
    ("blocks-bom", _bom_blocks, "starts with a byte-order mark"),
    ("blocks-non-ascii", _non_ascii_blocks, "b.txt:2: character 'é' is not ASCII"),
    ("blocks-empty", _empty_blocks, "b.txt holds no games"),
    ("text-bom-only", _bom_only_text, "t.txt is empty"),
    ("text-directory", _text_folder, "is a directory"),
    ("language-record-without-text", _record_without_text, 'line 2 has no "text" string'),
    ("sae-record-truncated", _sae_record_truncated, "moexbench.json is not valid JSON"),
    ("corpus-empty-line", _corpus_with_empty_line, "g.txt.xz:2: empty line"),
]


@pytest.mark.parametrize("call, needle", [r[1:] for r in LIBRARY_ROWS], ids=[r[0] for r in LIBRARY_ROWS])
def test_bad_input_to_a_library_entry_point(tmp_path, call, needle):
    from core.errors import BenchError

    with pytest.raises(BenchError) as e:
        call(tmp_path)
    assert needle in str(e.value) and "\n" not in str(e.value)


