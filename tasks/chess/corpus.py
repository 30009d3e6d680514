"""Chess corpora: the embedded engine-game corpus, a user's PGN files, Karvonen-style blocks.

Every loader returns games as movetext strings `;1.e4 e5 2.Nf3 ...` (docs/chess.md section 2.2).
Bad games are never dropped silently: a loader either raises naming the file and line, or, with
`on_error="skip"`, skips and returns how many it skipped.
"""

from __future__ import annotations

import lzma
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import BenchError

PACKAGED_DIR = Path(__file__).resolve().parents[2] / "data" / "chess"  # the committed engine games
EMBEDDED_DIR = Path(os.environ.get("MOEXBENCH_CHESS_DATA", PACKAGED_DIR))  # what the task reads
SPLIT_FILES = {"train": "train.txt.xz", "probe_train": "probe_train.txt.xz", "probe_test": "probe_test.txt.xz"}
# The evaluation reads the first 256 characters and the first 20 dots in them (docs/chess.md section 3).
EVAL_WINDOW = 256
EVAL_MIN_DOTS = 20


def count_dots(text: str) -> int:
    return text.count(".")


def write_split(path: Path, games: list[str]) -> None:
    """One game per line, xz-compressed, written atomically (temp file + rename)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with lzma.open(tmp, "wt", encoding="ascii", preset=9) as f:
        f.write("\n".join(games) + "\n")
    os.replace(tmp, path)


# What a refused corpus line's message ends with: the tool that writes a corpus and checks every move.
OWN_GAMES_FIX = ("`python -m tasks.chess.own_games` writes games of your own in it, every move checked; the "
                 "committed corpus comes back with `git checkout data/chess`")


def read_split(name: str, data_dir: Path | None = None) -> list[str]:
    if name not in SPLIT_FILES:
        raise BenchError(f"unknown chess split {name!r}; choose one of {', '.join(SPLIT_FILES)}")
    path = (data_dir or EMBEDDED_DIR) / SPLIT_FILES[name]
    if not path.exists():
        if data_dir is None and "MOEXBENCH_CHESS_DATA" in os.environ:  # the user's folder, not ours
            raise BenchError(f"MOEXBENCH_CHESS_DATA={os.environ['MOEXBENCH_CHESS_DATA']}: no {SPLIT_FILES[name]} "
                             f"there; write your games into it with `python -m tasks.chess.own_games`, or unset it")
        raise BenchError(f"chess corpus file {path} is missing; run `make chess-data` to generate it")
    return read_games_file(path)


def read_games_file(path: Path) -> list[str]:
    """The games of one xz corpus file, one per line; a file that is not xz-compressed ASCII text
    with at least one game is refused in one line."""
    try:
        with lzma.open(path, "rt", encoding="ascii") as f:
            games = f.read().split("\n")
    except (OSError, EOFError, lzma.LZMAError, UnicodeDecodeError) as e:
        raise BenchError(f"{path}: not a readable xz chess corpus of ASCII games ({e}); regenerate it "
                         f"(`make chess-data`) or write it with tasks.chess.corpus.write_split") from None
    if games and games[-1] == "":
        games.pop()  # the newline that ends the last game
    if not games:
        raise BenchError(f"{path}: holds no games; regenerate it")
    # Line n is game n: an empty line would shift every line number an error names after it.
    if "" in games:
        raise BenchError(f"{path}:{games.index('') + 1}: empty line; the corpus holds one game per line")
    return games


@dataclass
class LoadedGames:
    games: list[str]
    skipped: list[str] = field(default_factory=list)  # "file:line: reason" for each skipped game


def san_moves(game: str) -> list[str]:
    """The SAN moves of a `;1.e4 e5 2.Nf3 ...` game (move numbers dropped)."""
    moves = (t.split(".", 1)[1] if "." in t else t for t in game.lstrip(";").split())
    return [m for m in moves if m]  # a block cut after "12." leaves a number with no move


def movetext_problem(game: str) -> str | None:
    """What breaks the `;1.e4 e5 2.Nf3 ...` layout, or None: White's move n is written `n.` + SAN,
    Black's reply bare. The character format reads its positions at those dots, so a missing or wrong
    number would pair a position with another board's labels; python-chess alone does not see it. The
    last token may be a bare `12.` (a block cut after the number)."""
    for i, token in enumerate(game.lstrip(";").split()):
        number, dot, _ = token.partition(".")
        if i % 2 == 0 and (not dot or number != str(i // 2 + 1)):
            return f"ply {i + 1}: {token!r} should be White's move {i // 2 + 1}, written {i // 2 + 1}.<move>"
        if i % 2 == 1 and dot:
            return f"ply {i + 1}: {token!r} should be Black's reply, written without a move number"
    return None


def _validated(movetext: str, where: str) -> str:
    """Checks the layout and replays the game with python-chess; raises ValueError naming the bad move."""
    import chess

    problem = movetext_problem(movetext)
    if problem is not None:
        raise ValueError(f"{where}: {problem}")
    board = chess.Board()
    for san in san_moves(movetext):
        try:
            board.push_san(san)
        except ValueError as e:
            raise ValueError(f"{where}: illegal or malformed move {san!r} ({e})") from None
    return movetext


def load_pgn(path: Path, on_error: str = "raise") -> LoadedGames:
    """Games from a PGN file (headers ignored), converted to the benchmark's movetext."""
    import logging

    # python-chess logs each bad move it meets; the refusal below names it in its one line instead
    chess_log = logging.getLogger("chess.pgn")
    level = chess_log.level
    chess_log.setLevel(logging.CRITICAL)  # setLevel, not the attribute: it clears the logger's cached answer
    try:
        out = _read_pgn(path, on_error)
    except IsADirectoryError:
        raise BenchError(f"{path} is a directory, not a file of games") from None
    except FileNotFoundError:
        raise BenchError(f"{path} does not exist") from None
    except UnicodeDecodeError as e:
        raise BenchError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start}); convert it, "
                         f"e.g. iconv -f latin1 -t utf-8") from None
    finally:
        chess_log.setLevel(level)
    if not out.games and not out.skipped:
        raise BenchError(f"{path} holds no games")
    return out


def _read_pgn(path: Path, on_error: str) -> LoadedGames:
    import chess
    import chess.pgn

    from tasks.chess.generate_games import movetext

    out = LoadedGames([])
    with open(path, encoding="utf-8", errors="strict") as f, _LineCounter(f, path) as lines:
        while True:
            line_no = lines.at_offset()
            game = chess.pgn.read_game(f)
            if game is None:
                break
            where = f"{path}:{line_no}"
            problem = game.errors[0] if game.errors else None
            if problem is None and game.board().fen() != chess.STARTING_FEN:  # a [FEN] / [SetUp] header
                problem = "it starts from a set-up position, and games here are replayed from the initial one"
            if problem is None and not list(game.mainline_moves()):
                problem = "no moves"
            if problem is not None:
                if on_error == "raise":
                    raise BenchError(f"{where}: bad game ({problem}); fix it, or skip and count such games "
                                     f"(own_games --skip-bad)")
                out.skipped.append(f"{where}: {problem}")
                continue
            out.games.append(movetext(game.end().board()))
    return out


class _LineCounter:
    """Line number of a text file's current offset. PGN reading is sequential, so only the text
    since the last call is counted: linear in the file, however many games it holds."""

    def __init__(self, f, path: Path):
        # Counted on the bytes: a text file's tell() is a byte position, not a character count.
        self.f, self.raw, self.offset, self.line = f, open(path, "rb"), 0, 1

    def at_offset(self) -> int:
        pos = self.f.tell()
        self.raw.seek(self.offset)
        self.line += self.raw.read(pos - self.offset).count(b"\n")
        self.offset = pos
        return self.line

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.raw.close()


_BLOCK_GAME = re.compile(r";[^;]*")


def load_blocks(path: Path, on_error: str = "raise") -> LoadedGames:
    """Karvonen-style text: one row per line, each a `;1.e4 ...` block (1024 characters in his
    lichess dataset) holding one or more games. Blocks are cut at a fixed length, so the last
    move of a line may be partial: only that one token is dropped; any other bad move is an error."""
    out = LoadedGames([])
    raw = _read_text(path)
    if raw.startswith("\ufeff"):
        raise BenchError(f"{path} starts with a byte-order mark; save it as plain ASCII (no BOM)")
    bad = next((i for i, c in enumerate(raw) if ord(c) > 127), None)
    if bad is not None:
        line_no = raw.count("\n", 0, bad) + 1
        raise BenchError(f"{path}:{line_no}: character {raw[bad]!r} is not ASCII; Karvonen-style blocks are "
                         f"ASCII movetext")
    for line_no, line in enumerate(raw.splitlines(), start=1):
        if line.strip() and not line.strip().startswith(";"):
            raise BenchError(f"{path}:{line_no}: not a block of `;1.e4 e5 2.Nf3 ...` games (a block starts with "
                             f"';'); remove the line, or pass a PGN file with --pgn")
        games = [g.rstrip() for g in _BLOCK_GAME.findall(line.strip())]
        for k, game in enumerate(games):
            if k == len(games) - 1 and _cut_mid_move(game):
                game = game.rsplit(" ", 1)[0] if " " in game else ""
            if len(game) < 3:
                continue
            try:
                out.games.append(_validated(game, f"{path}:{line_no}"))
            except ValueError as e:
                if on_error == "raise":
                    raise BenchError(f"{e}; fix the file, or skip and count such games "
                                     f"(own_games --skip-bad)") from None
                out.skipped.append(str(e))
    if not out.games and not out.skipped:
        raise BenchError(f"{path} holds no games")
    return out


def _read_text(path: Path) -> str:
    try:
        return Path(path).read_bytes().decode("utf-8")
    except IsADirectoryError:
        raise BenchError(f"{path} is a directory, not a file of games") from None
    except FileNotFoundError:
        raise BenchError(f"{path} does not exist") from None
    except UnicodeDecodeError as e:
        raise BenchError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start}); convert it, "
                         f"e.g. iconv -f latin1 -t utf-8") from None


def _cut_mid_move(game: str) -> bool:
    """Whether a block's last game ends in a move cut by the block's fixed length: every earlier move
    replays and the last token is the start of what that ply must be written as, `n.<move>` for White's
    move n (`1` of `12.`, `12.Qx`), a bare move for Black's (`Qxf` of `Qxf7+`), with the start of a legal
    move in it. A last move that is complete but illegal, or lacks its number, is not a cut: it is
    refused with the game."""
    import chess

    *earlier, last = game.lstrip(";").split(" ")
    try:
        _validated(game, "")
        return False
    except ValueError:
        pass
    board = chess.Board()
    try:
        for san in san_moves(" ".join(earlier)):
            board.push_san(san)
    except ValueError:
        return False  # the bad move is not the last: _validated names it
    if len(earlier) % 2 == 0:  # White's move: its number comes first
        number = f"{len(earlier) // 2 + 1}."
        if len(last) <= len(number):
            return number.startswith(last)
        if not last.startswith(number):
            return False
        partial = last[len(number):]
    elif "." in last:
        return False
    else:
        partial = last
    return any(board.san(move).startswith(partial) for move in board.legal_moves)
