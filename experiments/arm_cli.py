"""The command line both recipe studies share: run named arms one after another, or write the report."""

from __future__ import annotations

import os
from typing import Callable

from bench.own_data import refuse_own_data
from core.arguments import OneLineParser
from core.errors import BenchError, run_command
from core.threads import add_threads_argument


def arms_main(doc: str, arms: dict, run_arm: Callable, report: Callable[[], list], argv=None,
              score: Callable | None = None) -> int:
    """`--arms a,b --threads 1` trains each arm (resumable) and prints its last curve point;
    `--score a,b` runs a trained arm's full evaluation, where the study has one; `--report` writes the
    study's table and figure from the arms' result files."""
    parser = OneLineParser(description=doc.splitlines()[0])
    parser.add_argument("--arms", default="", help=f"comma-separated, from: {', '.join(arms)}")
    add_threads_argument(parser)
    parser.add_argument("--report", action="store_true", help="write the table and figure from the arms' results")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars, in training or in scoring")
    if score is not None:
        parser.add_argument("--score", default="", help="comma-separated trained arms to score in full")
    args = parser.parse_args(argv)

    if args.no_progress:  # the scoring's bars are the evaluation's own (core/progress.py reads this)
        os.environ["MOEXBENCH_QUIET"] = "1"

    def body() -> None:
        refuse_own_data("chess", "a recipe study (written beside the committed results)")
        names = [a for a in args.arms.split(",") if a]
        scored = [a for a in getattr(args, "score", "").split(",") if a]
        unknown = [a for a in names + scored if a not in arms]
        if unknown:
            raise BenchError(f"unknown arm {unknown[0]!r}; choose from {', '.join(arms)}")
        if not names and not scored and not args.report:
            raise BenchError("name --arms (comma-separated), --score or --report")
        for name in names:
            last = run_arm(arms[name], args.threads, not args.no_progress)["points"][-1]
            print(f"{name}: probe F1 best layer {max(last['probe_f1_by_layer'].values()):.3f}, "
                  f"val loss {last['val_loss']:.3f}, {last['seconds'] / 60:.0f} min of steps")
        for name in scored:
            final = score(arms[name], args.threads)["final_eval"]
            print(f"{name}: full evaluation, probe F1 by layer {final['probe_f1_by_layer']}, random init "
                  f"{final['probe_f1_by_layer_random_init']}, legal moves {final['metrics']['legal_move_rate']:.3f}")
        if args.report:
            for path in report():
                print(f"wrote {path}")

    return run_command(body)


def best_f1(point: dict) -> float:
    """A curve point's probe F1 at its best layer."""
    return max(point["probe_f1_by_layer"].values())


def plot_arms(records: list, path, unit: str, title: str):
    """Probe F1 (best layer) against tokens seen and against CPU minutes, and validation loss, per arm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from core.results import save_figure

    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(15, 4))
    for r in records:
        pts, name = r["points"], r["arm"]["name"]
        ax1.plot([p["tokens"] / 1e6 for p in pts], [best_f1(p) for p in pts], marker="o", ms=3, label=name)
        ax2.plot([p["seconds"] / 60 for p in pts], [best_f1(p) for p in pts], marker="o", ms=3, label=name)
        ax3.plot([p["tokens"] / 1e6 for p in pts], [p["val_loss"] for p in pts], marker="o", ms=3, label=name)
    ax1.set(xlabel=f"{unit} seen (millions)", ylabel="probe F1 (best layer)", title=f"At equal {unit}")
    ax2.set(xlabel="training minutes, one thread", ylabel="probe F1 (best layer)", title="At equal CPU time")
    ax3.set(xlabel=f"{unit} seen (millions)", ylabel=f"validation loss (nats per {unit[:-1]})", title="Validation loss")
    ax2.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)
    return path
