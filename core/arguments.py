"""Command lines that refuse bad arguments the way every other refusal here does: one line, exit 2.

argparse's own error prints the usage block before the line that says what is wrong; a script's
parser is `OneLineParser(...)` instead, with everything else argparse's."""

from __future__ import annotations

import argparse
import sys


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str):
        # `python -m pkg.mod` names the parser after the file; the program name helps only when set
        where = f"`{self.prog} --help`" if not self.prog.endswith(".py") else "--help"
        sys.stderr.write(f"error: {message}; see {where}\n")
        sys.exit(2)
