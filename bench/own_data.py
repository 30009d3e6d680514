"""The commands that compare with or write the committed numbers (`make grid`, `make regress`, the
recipe, sweep, tokenizer and expert scripts) refuse a task's own data (core/own_data.py has the rest
of what runs on your own data promise)."""

from __future__ import annotations

from core.errors import BenchError


def refuse_own_data(task_name: str, what: str) -> None:
    """One line instead of running `what`, which compares with or writes the committed numbers, on
    the user's data."""
    from bench import registry

    folder = registry.task(task_name).own_data()
    if folder is not None:
        raise BenchError(f"{what} works on the committed data only, and the {task_name} data is {folder} here; "
                         f"unset its MOEXBENCH_*_DATA variable, or score your data with `make bench`")
