"""Your own chess games as the chess task's corpus, in a new folder: PGN files or Karvonen-style rows,
replayed move by move with python-chess, deduplicated, and split as the embedded corpus is: two
disjoint probe sets of games with at least 20 move numbers in their first 256 characters, every
other game in `train`.

    python -m tasks.chess.own_games --out my-games --pgn games/*.pgn
    python -m tasks.chess.own_games --out my-games --blocks lichess_rows.txt
    MOEXBENCH_CHESS_DATA=my-games make bench MODEL=moex TASK=chess

Both token formats have fixed vocabularies, so the committed checkpoints read any game: the probe
sets, the statistics games (the first of `train`) and the validation games (its last) are then yours.
Training reads `train`; a move-format preset (`cpu`, `short*`, `gpu`) also reads its shards of more
games from `<folder>/more/` (`python -m tasks.chess.more_games` fills it with engine games, deduplicated
against yours). A game that does not replay stops the command naming its file and line (`--skip-bad`
skips and counts such games instead). Results on your games go to `results/chess/data.<folder name>-<6 hex>/`
and name your folder in their provenance (core/own_data.py). The folder is written whole or not at
all, and an existing one is refused (core/new_folder.py): nothing is overwritten.
"""

from __future__ import annotations

import sys
from pathlib import Path

from core.arguments import OneLineParser
from core.errors import NOTHING_WRITTEN, BenchError, run_command
from core.new_folder import check_new, write_new_folder
from core.own_data import variant_for
from tasks.chess.corpus import EVAL_MIN_DOTS, EVAL_WINDOW, SPLIT_FILES, count_dots, load_blocks, load_pgn, write_split
from tasks.chess.generate_games import split_corpus
from tasks.chess.presets import PRESETS

PROBE_GAMES = max(p.n_probe_games for p in PRESETS.values())  # what the largest preset reads per probe set


def load_games(pgn: list[str] | None, blocks: list[str] | None, skip_bad: bool) -> tuple[list[str], list[str]]:
    """Every game in the files, in order, first copies only; and a line per skipped bad game."""
    on_error = "skip" if skip_bad else "raise"
    loaded = [load_pgn(Path(p), on_error) for p in pgn or []] + [load_blocks(Path(p), on_error) for p in blocks or []]
    games = list(dict.fromkeys(g for part in loaded for g in part.games))
    return games, [line for part in loaded for line in part.skipped]


def split_games(games: list[str], probe_games: int, seed: int) -> dict[str, list[str]]:
    ready = sum(count_dots(g[:EVAL_WINDOW]) >= EVAL_MIN_DOTS for g in games)
    if ready < 2 * probe_games:
        raise BenchError(f"{ready} of your {len(games)} distinct games have {EVAL_MIN_DOTS} move numbers in their first "
                         f"{EVAL_WINDOW} characters, and two probe sets of {probe_games} need {2 * probe_games}; give "
                         f"more games or a smaller --probe-games (at most {ready // 2})")
    splits = split_corpus(games, probe_games, seed)
    if not splits["train"]:
        raise BenchError(f"no game is left for train after two probe sets of {probe_games}; give more games or a "
                         f"smaller --probe-games")
    return splits


def write_folder(out: Path, splits: dict[str, list[str]]) -> None:
    def fill(folder: Path) -> None:
        for name, games in splits.items():
            write_split(folder / SPLIT_FILES[name], games)

    write_new_folder(out, fill)


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="a new folder for the games")
    source = parser.add_argument_group("games (one or both)")
    source.add_argument("--pgn", nargs="+", help="PGN files (headers ignored)")
    source.add_argument("--blocks", nargs="+", help="Karvonen-style files: rows of ';1.e4 e5 2.Nf3 ...'")
    parser.add_argument("--probe-games", type=int, default=PROBE_GAMES,
                        help=f"games in each probe set (default {PROBE_GAMES}, what the presets read at most)")
    parser.add_argument("--skip-bad", action="store_true", help="skip games that do not replay, and count them")
    parser.add_argument("--seed", type=int, default=0, help="which ready games go to the probe sets")
    args = parser.parse_args(argv)

    def body():
        if not (args.pgn or args.blocks):
            raise BenchError("no games given; pass --pgn FILE... and/or --blocks FILE...")
        check_new(args.out)
        if args.probe_games < 1:
            raise BenchError(f"--probe-games {args.probe_games} must be at least 1")
        games, skipped = load_games(args.pgn, args.blocks, args.skip_bad)
        splits = split_games(games, args.probe_games, args.seed)
        write_folder(args.out, splits)
        for name, split in splits.items():
            print(f"{args.out / SPLIT_FILES[name]}: {len(split):,} games")
        if skipped:
            print(f"skipped {len(skipped)} game(s) that do not replay, e.g. {skipped[0]}")
        if args.probe_games < PROBE_GAMES:
            print(f"note: presets that read {PROBE_GAMES} probe games per set read your {args.probe_games}; "
                  f"each result records its positions (details.positions)")
        print(f"use it: MOEXBENCH_CHESS_DATA={args.out} make bench MODEL=moex TASK=chess "
              f"(results in results/chess/{variant_for(args.out)}/)")

    return run_command(body, on_interrupt=NOTHING_WRITTEN)


if __name__ == "__main__":
    sys.exit(main())
