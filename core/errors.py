"""The one error type users see: a single line naming the problem and the fix."""


import sys
from typing import Callable


class BenchError(Exception):
    """Raised for bad input; the CLI prints `error: <message>` and exits with status 2."""


def run_command(body: Callable[[], None]) -> int:
    """Every command-line entry point's exit status: 0; 2 with one `error:` line for bad input; 130
    on Ctrl-C (training and SAEs resume from their last checkpoint when run again)."""
    try:
        body()
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; training resumes from its last checkpoint when run again", file=sys.stderr)
        return 130
    return 0
