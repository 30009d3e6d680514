"""Play the embedded chess corpus: Stockfish self-play from weighted gnuchess-book openings.

Engine games with human openings (docs/chess.md section 2.1). Every game is a pure function of
(seed, game index): its own random stream picks the opening and samples among the engine's top
moves, and the engine's hash is cleared before each game, so the corpus does not depend on how
games are spread over worker processes.

    python -m tasks.chess.generate_games --games 23000 --seed 0 --workers 2 --out data/chess
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing as mp
import os
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from core.arguments import OneLineParser
from core.worker_processes import die_with_parent
from tasks.chess.corpus import EVAL_MIN_DOTS, EVAL_WINDOW, SPLIT_FILES, count_dots, write_split

STOCKFISH = "/usr/games/stockfish"
BOOK = "/usr/share/games/gnuchess/book.bin"
INSTALL_HINT = "install them with: apt-get install stockfish gnuchess-book (or `make chess-deps`)"


@dataclass(frozen=True)
class GeneratorSettings:
    seed: int = 0
    nodes_per_move: int = 300
    multipv: int = 3
    # Softmax temperature over the engine's top moves, in centipawns: a move 100 cp worse than
    # the best is picked e^-2 as often. Diversity without throwing games away.
    temperature_cp: float = 50.0
    min_book_plies: int = 4
    max_book_plies: int = 16
    # The evaluation reads 256 characters (about 46 plies); longer games only cost engine time.
    max_plies: int = 60


def check_tools() -> None:
    missing = [p for p in (STOCKFISH, BOOK) if not Path(p).exists()]
    if missing:
        raise SystemExit(f"error: missing {', '.join(missing)}; {INSTALL_HINT}")


def movetext(board) -> str:
    """The game as `;1.e4 e5 2.Nf3 ...` (no headers, no result), the format of docs/chess.md section 2.2."""
    import chess

    replay = chess.Board()
    parts = []
    for ply, move in enumerate(board.move_stack):
        san = replay.san(move)
        parts.append(f"{ply // 2 + 1}.{san}" if ply % 2 == 0 else san)
        replay.push(move)
    return ";" + " ".join(parts)


_engine = None
_book = None


def _worker_init(parent_pid: int) -> None:
    global _engine, _book
    die_with_parent(parent_pid)
    import chess.engine
    import chess.polyglot

    _engine = chess.engine.SimpleEngine.popen_uci(STOCKFISH)
    _engine.configure({"Threads": 1, "Hash": 16})
    _book = chess.polyglot.open_reader(BOOK)


def _pick_engine_move(board, rng: random.Random, settings: GeneratorSettings, game_key: int):
    import chess.engine

    infos = _engine.analyse(
        board, chess.engine.Limit(nodes=settings.nodes_per_move), multipv=settings.multipv, game=game_key
    )
    scored = [(info["pv"][0], info["score"].relative.score(mate_score=100_000)) for info in infos if info.get("pv")]
    best = max(score for _, score in scored)
    weights = [math.exp((score - best) / settings.temperature_cp) for _, score in scored]
    return rng.choices([move for move, _ in scored], weights=weights)[0]


def play_game(index: int, settings: GeneratorSettings) -> tuple[int, str]:
    import chess

    rng = random.Random(f"chess-corpus/{settings.seed}/{index}")
    board = chess.Board()
    # Polyglot weights are counts from real games, so openings follow human frequencies.
    for _ in range(rng.randint(settings.min_book_plies, settings.max_book_plies)):
        try:
            entry = _book.weighted_choice(board, random=rng)
        except IndexError:
            break
        board.push(entry.move)
    while not board.is_game_over(claim_draw=True) and len(board.move_stack) < settings.max_plies:
        board.push(_pick_engine_move(board, rng, settings, game_key=index))
    return index, movetext(board)


def _play_chunk(args) -> list[tuple[int, str]]:
    indices, settings = args
    return [play_game(i, settings) for i in indices]


def play_games(indices: list[int], settings: GeneratorSettings, workers: int):
    """Yields {index: movetext} per chunk of 50 games, in completion order."""
    chunks = [(indices[s:s + 50], settings) for s in range(0, len(indices), 50)]
    if not chunks:
        return
    with mp.get_context("spawn").Pool(workers, initializer=_worker_init, initargs=(os.getpid(),)) as pool:
        for chunk in pool.imap_unordered(_play_chunk, chunks):
            yield dict(chunk)


def generate(n_games: int, settings: GeneratorSettings, workers: int) -> list[str]:
    """Games in index order, duplicates (same movetext) dropped, first occurrence kept."""
    results: dict[int, str] = {}
    started = time.time()
    for chunk in play_games(list(range(n_games)), settings, workers):
        results.update(chunk)
        rate = len(results) / (time.time() - started)
        print(f"\r{len(results)}/{n_games} games, {rate:.1f} games/s", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    seen, games = set(), []
    for i in sorted(results):
        if results[i] not in seen:
            seen.add(results[i])
            games.append(results[i])
    return games


def split_corpus(games: list[str], n_probe: int, seed: int) -> dict[str, list[str]]:
    """Two disjoint probe sets of evaluation-ready games; every other game is training data."""
    ready = [i for i, g in enumerate(games) if count_dots(g[:EVAL_WINDOW]) >= EVAL_MIN_DOTS]
    if len(ready) < 2 * n_probe:
        raise SystemExit(f"error: only {len(ready)} games have {EVAL_MIN_DOTS} dots in {EVAL_WINDOW} characters; "
                         f"need {2 * n_probe}: generate more games")
    random.Random(f"chess-split/{seed}").shuffle(ready)
    probe_train, probe_test = set(ready[:n_probe]), set(ready[n_probe:2 * n_probe])
    return {
        "train": [g for i, g in enumerate(games) if i not in probe_train and i not in probe_test],
        "probe_train": [games[i] for i in sorted(probe_train)],
        "probe_test": [games[i] for i in sorted(probe_test)],
    }


def write_card(out: Path, settings: GeneratorSettings, n_requested: int, n_unique: int,
               splits: dict[str, list[str]], seconds: float) -> None:
    import chess

    files = {}
    for name, games in splits.items():
        text = "\n".join(games) + "\n"
        files[SPLIT_FILES[name]] = {
            "games": len(games),
            "characters": sum(len(g) for g in games),
            "sha256_uncompressed": hashlib.sha256(text.encode()).hexdigest(),
            "sha256_file": hashlib.sha256((out / SPLIT_FILES[name]).read_bytes()).hexdigest(),
        }
    card = {
        "what": "engine games with human openings: Stockfish self-play after weighted gnuchess-book openings",
        "generator": "python -m tasks.chess.generate_games",
        "settings": asdict(settings),
        "games_requested": n_requested,
        "games_unique": n_unique,
        "files": files,
        "engine": STOCKFISH, "book": BOOK, "python_chess": chess.__version__,
        "generation_seconds": round(seconds, 1),
        "licences": {
            "stockfish": "GPL-3.0 (the engine; its games are program output)",
            "gnuchess-book": "public domain (Debian package gnuchess-book)",
            "python-chess": "GPL-3.0",
        },
    }
    (out / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    write_card_markdown(out, card)


def write_card_markdown(out: Path, card: dict) -> None:
    (out / "CARD.md").write_text(_card_markdown(card))


def _card_markdown(card: dict) -> str:
    rows = "\n".join(f"| {name} | {f['games']} | {f['characters']} | `{f['sha256_uncompressed']}` |"
                     for name, f in card["files"].items())
    settings = ", ".join(f"{k}={v}" for k, v in card["settings"].items())
    licences = "\n".join(f"- {k}: {v}" for k, v in card["licences"].items())
    return f"""# Chess corpus card

**What:** {card['what']}. These are not human games: the openings (4-16 plies) are drawn from
Debian's gnuchess-book with its real-game weights; every later move is Stockfish's, sampled among
its top moves by a softmax over centipawns, so the play is stronger and more uniform than lichess.

**Made by:** `{card['generator']}` (`make chess-data`), {card['games_requested']} games requested,
{card['games_unique']} unique after deduplication, in {card['generation_seconds']} s.
Settings: {settings}. Engine `{card['engine']}`, book `{card['book']}`, python-chess {card['python_chess']}.

**Format:** one game per line, `;1.e4 e5 2.Nf3 ...` (no headers, no result), xz-compressed.
`probe_train` and `probe_test` hold games with at least 20 move dots in their first 256
characters, disjoint from each other and from `train`.

| file | games | characters | sha256 of the uncompressed text |
|---|---|---|---|
{rows}

{_more_shards_markdown(card)}**Licences:**
{licences}

This file and card.json are written by the generator; do not edit them by hand.
"""


def _more_shards_markdown(card: dict) -> str:
    shards = card.get("more_shards")
    if not shards:
        return ""
    rows = "\n".join(f"| more/{name} | {s['game_indices'][0]}-{s['game_indices'][1]} | {s['games_unique_new']} | "
                     f"{s['characters']} | `{s['sha256_uncompressed']}` |" for name, s in sorted(shards.items()))
    total = sum(s["games_unique_new"] for s in shards.values())
    return f"""**More training games** ({total} in {len(shards)} shards): the same generator and settings at
the game indices after the base corpus's, played by `python -m tasks.chess.more_games`; each shard
keeps only games that appear in no file above and no earlier shard (so none is a probe game).

| file | game indices | new unique games | characters | sha256 of the uncompressed text |
|---|---|---|---|---|
{rows}

"""


def main(argv: list[str] | None = None) -> None:
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", type=int, default=23_000, help="games to play before deduplication")
    parser.add_argument("--probe-games", type=int, default=1000, help="games in each of probe_train/probe_test")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=mp.cpu_count())
    parser.add_argument("--nodes", type=int, default=GeneratorSettings.nodes_per_move)
    parser.add_argument("--out", type=Path, default=Path("data/chess"))
    args = parser.parse_args(argv)
    check_tools()
    settings = GeneratorSettings(seed=args.seed, nodes_per_move=args.nodes)
    started = time.time()
    games = generate(args.games, settings, args.workers)
    splits = split_corpus(games, args.probe_games, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, split_games in splits.items():
        write_split(args.out / SPLIT_FILES[name], split_games)
    write_card(args.out, settings, args.games, len(games), splits, time.time() - started)
    print(f"wrote {', '.join(f'{k} {len(v)}' for k, v in splits.items())} games to {args.out}")


if __name__ == "__main__":
    main()
