"""kill -9 in the middle of training, then the same command again: the finished weights equal those of
a run never interrupted. The state is one file replaced atomically, so no moment of the kill can
leave weights of one step beside the bookkeeping of another."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from models.checkpoint import load_model
from models.train import read_state_meta

ROOT = Path(__file__).resolve().parents[1]
TRAIN = """
import dataclasses, sys, torch
from pathlib import Path
from models.gpt import GPT
from models.train import train
from tasks.chess.task import ChessTask
torch.set_num_threads(1)
torch.manual_seed(0)
model = GPT(ChessTask.dense_config("tiny"))
data = ChessTask.training_data("tiny", 0)
cfg = dataclasses.replace(ChessTask.train_config("tiny", 0), steps=30, eval_every=10, checkpoint_every_s=0.0)
first = []
def batch_fn(step):  # says where this process's training starts
    if not first:
        first.append(step)
        print(f"first step {step}", flush=True)
    return data.batch_fn(step)
train(model, cfg, batch_fn, data.val_tokens, Path(sys.argv[1]), Path(sys.argv[2]), data.fingerprint, {},
      progress=False)
"""


def _train(run_dir: Path, final: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", TRAIN, str(run_dir), str(final)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_kill_9_then_the_same_command_finishes_with_the_uninterrupted_weights(tmp_path):
    straight = _train(tmp_path / "straight", tmp_path / "straight-final")
    assert straight.wait(timeout=600) == 0, straight.stderr.read()[-2000:]

    killed = _train(tmp_path / "resumed", tmp_path / "resumed-final")
    state, deadline = tmp_path / "resumed" / "state.safetensors", time.time() + 300
    while not (state.exists() and read_state_meta(state.parent)["step"] >= 8):
        assert killed.poll() is None and time.time() < deadline, "training ended before it could be killed"
        time.sleep(0.05)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    at_kill = read_state_meta(state.parent)["step"]
    assert 8 <= at_kill < 30

    again = _train(tmp_path / "resumed", tmp_path / "resumed-final")
    assert again.wait(timeout=600) == 0, again.stderr.read()[-2000:]
    assert again.stdout.read().startswith(f"first step {at_kill}\n")  # resumed, not started over
    a, _ = load_model(tmp_path / "straight-final")
    b, _ = load_model(tmp_path / "resumed-final")
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), name
