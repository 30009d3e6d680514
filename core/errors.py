"""The one error type users see: a single line naming the problem and the fix."""


import sys
from typing import Callable


class BenchError(Exception):
    """Raised for bad input; the CLI prints `error: <message>` and exits with status 2."""


RESUMES = "interrupted; training resumes from its last checkpoint when run again"
NOTHING_WRITTEN = "interrupted; nothing was written"
FILES_WHOLE = "interrupted; each file written so far is whole; run it again for the rest"


def run_command(body: Callable[[], None], on_interrupt: str = RESUMES) -> int:
    """Every command-line entry point's exit status: 0; 2 with one `error:` line for bad input; 130
    on Ctrl-C, with `on_interrupt` saying what the user has (a command that writes its output whole
    or not at all passes NOTHING_WRITTEN)."""
    try:
        body()
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(on_interrupt, file=sys.stderr)
        return 130
    return 0
