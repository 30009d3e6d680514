"""Board knowledge during training: a linear probe on every layer's residual stream at each
validation step, on a small fixed slice of the probe sets.

The probe is the evaluation's own (tasks/chess/probe.py); the slice is smaller than the final
evaluation's 1000 + 1000 games so a curve point costs seconds, and it is named in the curve file.
"""

from __future__ import annotations

import json
from functools import lru_cache

import numpy as np
import torch

from core.errors import BenchError
from core.results import atomic_write_text, result_dir, save_figure
from tasks.chess.corpus import read_split
from tasks.chess.positions import build_positions
from tasks.chess.probe import probe_f1

CURVE_GAMES = 200  # per probe split: 4,000 positions each


@lru_cache(maxsize=2)
def _curve_positions(fmt_name: str, n_games: int):
    return (build_positions(read_split("probe_train")[:n_games], workers=1, fmt_name=fmt_name),
            build_positions(read_split("probe_test")[:n_games], workers=1, fmt_name=fmt_name))


@torch.no_grad()
def _resid_at_positions(model, positions) -> list[torch.Tensor]:
    hooks = [f"blocks.{i}.hook_resid_post" for i in range(model.cfg.n_layers)]
    device = next(model.parameters()).device
    tokens = positions.tokens.to(device)
    dots = torch.from_numpy(positions.token_index).view(len(positions.games), -1).to(device)
    out = [[] for _ in hooks]
    # Activations stay on the model's device, so the probe is fitted there too (fit_probe follows x).
    for start in range(0, len(tokens), 50):
        _, cache = model.run_with_cache(tokens[start:start + 50], names_filter=hooks)
        idx = dots[start:start + 50]
        rows = torch.arange(len(idx), device=device)[:, None]
        for k, h in enumerate(hooks):
            out[k].append(cache[h].float()[rows, idx].reshape(-1, model.cfg.d_model))
    return [torch.cat(x) for x in out]


def curve_point(model, step: int, fmt_name: str = "chars", n_games: int = CURVE_GAMES) -> dict:
    """The probe F1 of every layer, to add to the training history at this step."""
    was_training = model.training
    model.eval()
    train, test = _curve_positions(fmt_name, n_games)
    r_train, r_test = _resid_at_positions(model, train), _resid_at_positions(model, test)
    ct = torch.from_numpy(train.classes.astype(np.int64))
    cs = torch.from_numpy(test.classes.astype(np.int64))
    f1 = {str(i): round(probe_f1(a, ct, b, cs), 4) for i, (a, b) in enumerate(zip(r_train, r_test))}
    model.train(was_training)
    return {"probe_f1_by_layer": f1}


def write_curve(model_name: str, preset: str, meta: dict, variant: str | None = None) -> list:
    """results/chess/[<preset>/][<variant>/]training_curve_<model>.json and .png from a checkpoint's
    training history."""
    history = [h for h in meta.get("history", []) if "probe_f1_by_layer" in h]
    if not history:
        return []
    folder = result_dir("chess", preset, variant)
    from tasks.chess.presets import PRESETS

    record = {"model": model_name, "preset": preset, "format": PRESETS[preset].format,
              "model_config": meta.get("model_config"),
              "train_config": meta.get("train_config"), "data": meta.get("fingerprint", {}).get("data"),
              "probe": f"multinomial logistic per square, first {PRESETS[preset].n_curve_games} games of each probe "
                       f"split ({PRESETS[preset].n_curve_games * 20} positions each), F1 over the 768 masked "
                       f"board-state BSPs",
              "points": history}
    path = folder / f"training_curve_{model_name}.json"
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")
    return [path, plot_curve(record, folder / f"training_curve_{model_name}.png")]


def reach_estimate(record: dict, target: float = 0.9) -> dict:
    """Where the best layer's probe F1 would reach `target` if it kept its log-linear trend: a least-
    squares line of F1 against log2(tokens seen) through the second half of the curve (the first half
    is dominated by warmup). A crude extrapolation and a pessimistic one: a cosine run flattens as its
    learning rate decays, so its end understates the slope of runs of growing length."""
    points = record["points"]
    tail = points[len(points) // 2:]
    if len(tail) < 2:
        raise BenchError("a reach estimate needs a curve of at least 4 points")
    x = np.log2([p["tokens"] for p in tail])
    y = np.array([max(p["probe_f1_by_layer"].values()) for p in tail])
    slope, intercept = np.polyfit(x, y, 1)
    last = tail[-1]["tokens"]
    tokens = float(2 ** ((target - intercept) / slope)) if slope > 0 else float("inf")
    return {"target": target, "f1_per_doubling": float(slope), "tokens_at_target": tokens,
            "times_trained_tokens": tokens / last, "fitted_points": len(tail)}


def plot_curve(record: dict, path):
    """Probe F1 per layer against tokens seen and against training minutes (CPU minutes where every
    point has them, else wall-clock ones, which count whatever else the machine ran); validation loss."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    unit = "moves" if record.get("format") == "moves" else "characters"
    points = record["points"]
    seen = [p["tokens"] / 1e6 for p in points]
    cpu = all("cpu_seconds" in p for p in points)
    minutes = [p["cpu_seconds" if cpu else "seconds"] / 60 for p in points]
    time_label = "training CPU minutes (steps only)" if cpu else "training minutes (wall clock, steps only)"
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(14, 3.8))
    for layer in points[0]["probe_f1_by_layer"]:
        f1 = [p["probe_f1_by_layer"][layer] for p in points]
        ax1.plot(seen, f1, marker="o", ms=3, label=f"after block {layer}")
        ax2.plot(minutes, f1, marker="o", ms=3)
    if len(points) >= 4:
        reach = reach_estimate(record)
        ax1.text(0.02, 0.03, f"trend of the best layer: {reach['f1_per_doubling']:+.3f} F1 per doubling of "
                 f"{unit};\n0.9 at ~{reach['times_trained_tokens']:.0e} x the {unit} trained",
                 transform=ax1.transAxes, va="bottom", fontsize=7)
    for ax, xlabel in ((ax1, f"training {unit} (millions)"), (ax2, time_label)):
        ax.axhline(0.9, color="grey", ls="--", lw=0.8)
        ax.set(xlabel=xlabel, ylabel="probe F1, masked board state", ylim=(0, 1))
    ax1.set_title("Linear probe on the residual stream")
    ax2.set_title("... against training time")
    ax1.legend(fontsize=7)
    ax3.plot(seen, [p["val_loss"] for p in points], marker="o", ms=3, color="black")
    ax3.set(xlabel=f"training {unit} (millions)", ylabel=f"validation loss (nats per {unit[:-1]})",
            title="Validation loss")
    fig.suptitle(f"{record['model']} ({record['preset']} preset): board knowledge during training")
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)
    return path
