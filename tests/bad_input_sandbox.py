"""What the bad-input tests share: a sandbox of results, checkpoints, runs, cache and chess data per
test, a digest of folders to show a refusal changed nothing, and the tiny runs they refuse."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from core.own_data import variant_for

ROOT = Path(__file__).resolve().parents[1]

BENCH_TINY = ("bench", "--model", "dense", "--task", "chess", "--preset", "tiny", "--threads", "1",
              "random_floor=false", "legal_move_games=0", "probe_games=20")
TRAIN_TINY = ("train", "--model", "dense", "--task", "chess", "--preset", "tiny", "--threads", "1")


def tree_digest(*folders: Path) -> str:
    digest = hashlib.sha256()
    for folder in folders:
        for path in sorted(folder.rglob("*")) if folder.exists() else []:
            if path.is_file():
                digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


class Sandbox:
    """Results, checkpoints, runs, cache and chess data of one row, in a temp folder."""

    def __init__(self, root: Path, checkpoint_source: Path):
        self.root = root
        self.results, self.checkpoints = root / "results", root / "checkpoints"
        self.data = root / "chess-data"
        shutil.copytree(ROOT / "data" / "chess", self.data, ignore=shutil.ignore_patterns("more"))
        shutil.copytree(checkpoint_source, self.checkpoints)
        self.stem = self.checkpoints / "chess" / "dense-tiny"

    def env(self) -> dict:
        return {**os.environ, "MOEXBENCH_RESULTS": str(self.results), "MOEXBENCH_CHECKPOINTS": str(self.checkpoints),
                "MOEXBENCH_RUNS": str(self.root / "runs"), "MOEXBENCH_CACHE": str(self.root / "cache"),
                "MOEXBENCH_CHESS_DATA": str(self.data), "MOEXBENCH_THREADS": "1", "CI": "true"}

    def run(self, *args, env: dict | None = None):
        return subprocess.run([sys.executable, "-m", "bench", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=300, env=env or self.env())

    def write_result(self, model: str, seed: int, metrics, variant: str | None = None) -> Path:
        """A result where runs on the sandbox's games (its own data) write them."""
        folder = self.results / "chess" / "tiny" / (variant_for(self.data) if variant is None else variant)
        path = folder / (f"{model}.json" if seed == 0 else f"seeds/{model}.seed{seed}.json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"task": "chess", "model": model, "preset": "tiny", "schema_version": 1,
                                    "metrics": metrics, "config": {}, "provenance": {"seed": seed}}))
        return path
