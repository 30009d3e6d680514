"""More engine games for training, in shards that can be generated over several sessions.

The base corpus (`make chess-data`) played game indices 0..N-1 of its seed; shard k plays the next
indices, N + k*S .. N + (k+1)*S - 1, with the same generator and settings, so every game is still a
pure function of (seed, index). Finished chess games are appended to a progress file as they come
in (one JSON line per 50 games), so a killed run loses at most the chunks in flight and the next
run continues. A finished shard is deduplicated against the base corpus (all three splits, so no
probe game leaks into training) and against earlier shards, written as
`data/chess/more/train-KKK.txt.xz`, and recorded in the corpus card.

    python -m tasks.chess.more_games --shards 20 --shard-games 10000 --workers 1
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from core.arguments import OneLineParser
from core.errors import BenchError, run_command
from core.paths import RUNS
from core.progress import progress as progress_bar
from tasks.chess.corpus import EMBEDDED_DIR, SPLIT_FILES, read_games_file, read_split, write_split
from tasks.chess.generate_games import GeneratorSettings, check_tools, play_games, write_card_markdown

MORE_DIR_NAME = "more"
PROGRESS_DIR = RUNS / "chess-games"


def shard_path(data_dir: Path, shard: int) -> Path:
    return data_dir / MORE_DIR_NAME / f"train-{shard:03d}.txt.xz"


def shard_files(data_dir: Path) -> list[Path]:
    """The finished shards, in shard order."""
    return sorted((data_dir / MORE_DIR_NAME).glob("train-*.txt.xz"))


def _read_progress(path: Path) -> dict[int, str]:
    """Games already played for a shard. A line cut short by a kill can only be the last one: it
    is cut off the file, so the next run appends after a whole line."""
    done: dict[int, str] = {}
    if not path.exists():
        return done
    raw = path.read_bytes()
    whole = raw[: raw.rfind(b"\n") + 1]
    if len(whole) != len(raw):
        with open(path, "r+b") as f:
            f.truncate(len(whole))
    for number, line in enumerate(whole.decode("ascii", errors="replace").splitlines(), start=1):
        try:
            done.update({int(k): v for k, v in json.loads(line).items()})
        except (ValueError, AttributeError) as e:
            raise BenchError(f"{path}:{number}: not a line of played games ({e}); delete the file to replay "
                             f"that shard's games") from None
    return done


def play_shard(shard: int, first_index: int, n_games: int, settings: GeneratorSettings, workers: int,
               progress_dir: Path) -> dict[int, str]:
    progress_dir.mkdir(parents=True, exist_ok=True)
    progress = progress_dir / f"seed{settings.seed}-shard{shard:03d}-{first_index}-{n_games}.jsonl"
    done = _read_progress(progress)
    todo = [i for i in range(first_index, first_index + n_games) if i not in done]
    with open(progress, "a", encoding="ascii") as log, \
            progress_bar(total=n_games, initial=len(done), desc=f"shard {shard}", unit="game") as bar:
        for chunk in play_games(todo, settings, workers):
            done.update(chunk)
            log.write(json.dumps({str(k): v for k, v in chunk.items()}) + "\n")
            log.flush()
            bar.update(len(chunk))
    return done


def finish_shard(data_dir: Path, shard: int, games: dict[int, str], seen: set[str]) -> list[str]:
    """Unique new games in index order; `seen` grows by them."""
    kept = []
    for i in sorted(games):
        if games[i] not in seen:
            seen.add(games[i])
            kept.append(games[i])
    path = shard_path(data_dir, shard)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_split(path, kept)
    return kept


def record_in_card(data_dir: Path, shard: int, first_index: int, n_games: int, kept: list[str]) -> None:
    card_path = data_dir / "card.json"
    card = json.loads(card_path.read_text())
    text = "\n".join(kept) + "\n"
    card.setdefault("more_shards", {})[shard_path(data_dir, shard).name] = {
        "game_indices": [first_index, first_index + n_games - 1],
        "games_played": n_games,
        "games_unique_new": len(kept),
        "characters": sum(len(g) for g in kept),
        "sha256_uncompressed": hashlib.sha256(text.encode()).hexdigest(),
    }
    tmp = card_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(card, indent=2) + "\n")
    tmp.replace(card_path)
    write_card_markdown(data_dir, card)


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, default=20, help="shards to have when done")
    parser.add_argument("--shard-games", type=int, default=10_000, help="games played per shard")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--data", type=Path, default=EMBEDDED_DIR)
    parser.add_argument("--progress", type=Path, default=PROGRESS_DIR)
    args = parser.parse_args(argv)

    def body() -> None:
        if not (args.data / "card.json").is_file():
            raise BenchError(f"{args.data / 'card.json'} does not exist: more_games adds games to an "
                             f"engine-generated corpus with the generator settings its card records (the committed "
                             f"one: make chess-data); a folder of your own games (own_games) has none, so add shards "
                             f"of your games by hand "
                             f"({args.data / MORE_DIR_NAME}/train-000.txt.xz, ...: xz text, one game per line)")
        check_tools()
        card = json.loads((args.data / "card.json").read_text())
        settings = GeneratorSettings(**card["settings"])
        base_games = card["games_requested"]
        seen = {g for name in SPLIT_FILES for g in read_split(name, args.data)}
        recorded = card.get("more_shards", {})
        for shard in range(args.shards):
            first = base_games + shard * args.shard_games
            path = shard_path(args.data, shard)
            known = recorded.get(path.name)
            if known and known["game_indices"] != [first, first + args.shard_games - 1]:
                low, high = known["game_indices"]
                raise BenchError(f"{path.name} holds game indices {low}-{high}, not "
                                 f"{first}-{first + args.shard_games - 1}: it was played with --shard-games "
                                 f"{known['games_played']}; pass that")
            if path.exists():
                games = read_games_file(path)
                seen.update(games)
                if not known:  # written, then killed before the card was: record it now
                    record_in_card(args.data, shard, first, args.shard_games, games)
                continue
            games = play_shard(shard, first, args.shard_games, settings, args.workers, args.progress)
            kept = finish_shard(args.data, shard, games, seen)
            record_in_card(args.data, shard, first, args.shard_games, kept)
            print(f"shard {shard}: {len(kept)} new unique games of {args.shard_games} -> {path}", flush=True)
        total = sum(len(read_games_file(p)) for p in shard_files(args.data))
        print(f"{len(shard_files(args.data))} shards, {total} games beyond the base corpus", flush=True)

    return run_command(body, on_interrupt="interrupted; generation resumes from its progress files when run again")


if __name__ == "__main__":
    sys.exit(main())
