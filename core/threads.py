"""The `--threads` option every command shares: torch threads, from MOEXBENCH_THREADS when the flag is
absent, else 1. One thread is what the committed results were scored at (the chess probe's F1 moves in
the fourth decimal at another count), and two one-thread jobs beside each other run many times faster
than two at two threads each."""

from __future__ import annotations

import argparse
import os


def thread_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a thread count (from --threads, or MOEXBENCH_THREADS "
                                         f"when the flag is absent): use a whole number of at least 1")
    return value


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    # A string default goes through `type` too, so a bad MOEXBENCH_THREADS is argparse's error; an empty one
    # counts as unset, as in the Makefile.
    parser.add_argument("--threads", type=thread_count, default=os.environ.get("MOEXBENCH_THREADS") or "1",
                        help="torch threads (default 1, as the committed results; MOEXBENCH_THREADS sets it too)")
