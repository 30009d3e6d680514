"""The one error type users see: a single line naming the problem and the fix."""


class BenchError(Exception):
    """Raised for bad input; the CLI prints `error: <message>` and exits with status 2."""
