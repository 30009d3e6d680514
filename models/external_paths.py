"""Whether the paths a model of yours is named by exist and are of the right kind, with the line that
says what to give instead. No model library is imported here: the command line checks these before
the seconds of importing TransformerLens and SAELens, and the loaders check them again for callers of
their own."""

from __future__ import annotations

from pathlib import Path

WHAT_TO_GIVE = {
    "hf": "give the folder saved by transformers' save_pretrained",
    "nanogpt": "give the ckpt.pt that nanoGPT's train.py saved",
    "sae": "give the folder SAELens' save_model wrote (cfg.json and sae_weights.safetensors)",
}


def path_problem(part: str, path: Path) -> str | None:
    """The refusal for `part` (hf, nanogpt or sae) at `path`, or None when it is there: hf and sae name a
    folder, nanogpt a file."""
    path = Path(path)
    wants_file = part == "nanogpt"
    if path.is_file() if wants_file else path.is_dir():
        return None
    if wants_file:
        what = "a folder, not a file" if path.is_dir() else "no such file"
    else:
        what = "a file, not a folder" if path.exists() else "no such folder"
    return f"{part}:{path}: {what}; {WHAT_TO_GIVE[part]}"
