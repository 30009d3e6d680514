"""`make perf`: speed figures measured in one run, reported as ratios where a ratio is the claim
(absolute times drift on shared machines). Writes results/perf.json and results/perf.md.

Measured now (`--parts`, each merged into perf.json with its threads and git sha): training step
time of every MoE model over the dense model at equal active width (cpu preset shapes, random
tokens, the training dtype of the preset); the cost of the chess coverage + reconstruction counting
at the reference size (20,000 + 20,000 positions) as the number of features grows; dense step time
under bf16 / torch.compile; auto-interp scoring and caching speed and memory (perf/autointerp.py);
the superposition task's training step at the paper preset's shapes, fused against straightforward
(perf/superposition.py).
"""

from __future__ import annotations

import json
import time

import torch

from core.arguments import OneLineParser
from core.results import atomic_write_text, git_sha, results_root, versions
from core.threads import add_threads_argument
from perf.timing import interleaved_seconds, median_seconds


def _stepper(model_name: str, preset: str, bf16: bool | None = None, compiled: bool = False):
    """One training step of a freshly built model on random tokens of the preset's batch and context."""
    from bench import registry
    from bench.model_store import build_random
    from models.gpt import auxiliary_loss
    from tasks.chess.task import ChessTask

    model = build_random(registry.model_adapter(model_name), ChessTask, preset, seed=0)
    recipe = ChessTask.train_config(preset, 0)
    bf16 = recipe.bf16 if bf16 is None else bf16
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    forward = torch.compile(model) if compiled else model
    tokens = torch.randint(0, model.cfg.vocab_size, (recipe.batch_size, model.cfg.n_ctx))

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = forward(tokens, return_type="loss")
        opt.zero_grad(set_to_none=True)
        (loss + auxiliary_loss(model)).backward()
        opt.step()
    step.model = model
    return step


def _step_seconds(model_name: str, preset: str, steps: int, warmup: int, bf16: bool | None = None,
                  compiled: bool = False, profile: bool = False) -> float:
    step = _stepper(model_name, preset, bf16, compiled)
    median = median_seconds(step, repeats=steps, warmup=warmup)
    if profile:  # one more step under the torch profiler: what dominates it
        from torch.profiler import ProfilerActivity
        from torch.profiler import profile as profiler

        with profiler(activities=[ProfilerActivity.CPU]) as prof:
            step()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))
    return median


def _interleaved_step_seconds(names: list[str], preset: str, steps: int, warmup: int = 2,
                              steppers: dict | None = None) -> dict[str, float]:
    """Median step time per model, the models taking turns step by step (perf/timing.py)."""
    steppers = steppers or {name: _stepper(name, preset) for name in names}
    return interleaved_seconds({name: steppers[name] for name in names}, repeats=steps, warmup=warmup)


def _counting_seconds(n_features: int, n_positions: int = 20_000, density: float = 0.05,
                      sparse: bool = True) -> float:
    from tasks.chess.feature_metrics import BSPGroup, evaluate_features

    gen = torch.Generator().manual_seed(0)
    acts = lambda: torch.rand(n_positions, n_features, generator=gen) * (  # noqa: E731
        torch.rand(n_positions, n_features, generator=gen) < density)
    labels = lambda: (torch.rand(n_positions, 768 + 140, generator=gen) < 0.05).to(torch.uint8)  # noqa: E731
    train, test = acts(), acts()
    y_train, y_test = labels(), labels()
    groups = {"board_state": BSPGroup(y_train[:, :768], y_test[:, :768], 12),
              "strategy": BSPGroup(y_train[:, 768:], y_test[:, 768:], 1)}
    start = time.perf_counter()
    evaluate_features(train, test, train.max(0).values, groups, sparse=sparse)
    return time.perf_counter() - start


PARTS = ("train", "dispatch", "dispatch_profile", "mfu", "counting", "variants", "autointerp", "end_to_end",
         "superposition")


def _measure(part: str, args) -> dict:
    if part == "train":
        step = _interleaved_step_seconds(args.models.split(","), args.preset, args.steps)
        return {"train_step_seconds": step,
                "train_step_ratio_to_dense": {m: s / step["dense"] for m, s in step.items()} if "dense" in step else {}}
    if part == "dispatch":
        from perf.dispatch import dispatch_seconds

        return {"moe_dispatch": dispatch_seconds()}
    if part == "dispatch_profile":
        from perf.dispatch import dispatch_profile

        return {"moe_dispatch_profile": dispatch_profile()}
    if part == "mfu":
        return {"model_flop_utilisation": _mfu(args)}
    if part == "counting":
        sizes = [int(f) for f in args.features.split(",")]
        # The straightforward version (every feature counted at every threshold) only where it fits
        # in memory and minutes: the two smaller sizes.
        return {"chess_counting_seconds_by_features": {f: _counting_seconds(f) for f in sizes},
                "chess_counting_dense_seconds_by_features": {f: _counting_seconds(f, sparse=False)
                                                             for f in sizes[:2]},
                "chess_counting_seconds_by_positions": {n: _counting_seconds(sizes[0], n_positions=n)
                                                        for n in (5_000, 10_000, 20_000)}}
    if part == "variants":  # throughput options for the dense training recipe: dtype x torch.compile
        variants = {f"{'bf16' if b else 'fp32'}{'+compile' if c else ''}": (b, c) for b in (False, True)
                    for c in (False, True)}
        return {"dense_step_seconds_by_variant": {name: _step_seconds("dense", args.preset, args.steps, warmup=3,
                                                                      bf16=b, compiled=c)
                                                  for name, (b, c) in variants.items()}}
    if part == "superposition":
        from perf.superposition import step_seconds

        return {"superposition_step": step_seconds()}
    if part == "end_to_end":
        from perf.end_to_end import bench_seconds

        return {"end_to_end": bench_seconds(threads=args.threads)}
    from perf.autointerp import caching_scaling, lexical_features_per_second

    return {"autointerp": {"lexical_features_per_second": lexical_features_per_second(),
                           "caching": caching_scaling(threads=args.threads)}}


def _mfu(args) -> dict:
    """Each model's training FLOP rate over the machine's fp32 matmul peak, measured side by side."""
    from perf.dispatch import matmul_peak_flops, step_flops
    from tasks.chess.task import ChessTask

    peak = matmul_peak_flops()
    recipe = ChessTask.train_config(args.preset, 0)
    names = args.models.split(",")
    steppers = {name: _stepper(name, args.preset) for name in names}
    seconds = _interleaved_step_seconds(names, args.preset, args.steps, steppers=steppers)
    out = {"matmul_peak_gflops": peak / 1e9, "models": {}}
    for name in names:
        model = steppers[name].model
        flops = step_flops(model, recipe.batch_size * model.cfg.n_ctx)
        out["models"][name] = {"step_gflop": flops / 1e9, "achieved_gflops": flops / seconds[name] / 1e9,
                               "utilisation": flops / seconds[name] / peak}
    return out


NOTES = ("step: median of timed steps after 2 warm-up steps, random tokens, batch and context of the preset; "
         "the models of the train and mfu parts take turns step by step. "
         "counting: evaluate_features on random activations of 5% density, 20,000 + 20,000 positions, 908 BSPs, "
         "11 thresholds. dispatch: one MLP layer on 32 x 256 tokens, the three timed in turn (median of 15); its "
         "profile: 10 profiled steps of ours and the dense MLP after 3 warm-up steps. mfu: "
         "FLOPs = 6 x matmul parameters (active experts only) x tokens + attention products, over a 2048^2 fp32 "
         "matmul's rate. dense variants: the same step with bf16 autocast and/or torch.compile (compile time "
         "excluded by the warm-up steps). autointerp: lexical scoring of synthetic features (40 + 50 + 50 windows "
         "of 32 tokens); caching = the window-maxima pass over a random sparse 16,384-feature map, each token "
         "count in a fresh process (peak RSS its own). end_to_end: `make bench MODEL=moex TASK=chess` from the committed "
         "checkpoint in a child process (peak RSS its own), results and caches in a scratch folder, first with an "
         "empty cache, then again with the cache it filled. superposition: one training step (fresh data, forward, "
         "loss, backward, AdamW) at the paper preset's shapes, the three paths taking turns, median of 3 after 1 "
         "warm-up; projected hours = 10,000 steps x the runs a model trains (MoE: the three sweeps + the "
         "specialisation run twice), evaluation left out.")


def main(argv=None) -> None:
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu")
    add_threads_argument(parser)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--models", default="dense,moe,switch,moex")
    parser.add_argument("--features", default="2048,8192,32768")
    parser.add_argument("--parts", default=",".join(PARTS),
                        help=f"which figures to measure now (others keep their last values): {', '.join(PARTS)}")
    parser.add_argument("--profile", metavar="MODEL", help="only print a torch profile of one training step of MODEL")
    parser.add_argument("--render-only", action="store_true", help="rewrite perf.md from perf.json, measure nothing")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.render_only:
        args.parts = ""
    if args.profile:
        _step_seconds(args.profile, args.preset, 1, warmup=2, profile=True)
        return
    out = results_root()
    path = out / "perf.json"
    record = json.loads(path.read_text()) if path.exists() else {}
    for part in filter(None, args.parts.split(",")):
        if part not in PARTS:
            raise SystemExit(f"error: unknown part {part!r}; choose from {', '.join(PARTS)}")
        record.update(_measure(part, args))
        record.setdefault("measured", {})[part] = {"threads": args.threads, "preset": args.preset,
                                                   "git_sha": git_sha(), "versions": versions()}
    record["notes"] = NOTES
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")
    lines = _markdown(record)
    atomic_write_text(out / "perf.md", "\n".join(lines) + "\n\n" + NOTES + "\n")
    print("\n".join(lines))


def _when(record: dict, part: str) -> str:
    """Under each section: the run it came from (parts measured before per-part records say so)."""
    m = record.get("measured", {}).get(part)
    if m:
        return f"_{part}: {m['threads']} thread(s), git {m['git_sha'][:12]}_"
    return f"_{part}: an earlier whole run, {record.get('threads', '?')} thread(s), before per-part records_"


def _aims(record: dict) -> list[str]:
    """Each performance aim, judged from the figures below (a figure not measured is left out)."""
    rows = []

    def judge(what: str, value, text: str, met) -> None:
        if value is not None:
            rows.append(f"| {what} | {text.format(value)} | {'met' if met(value) else 'missed'} |")

    judge("moex training step over dense (<= 1.25x)", record.get("train_step_ratio_to_dense", {}).get("moex"),
          "{:.2f}x", lambda v: v <= 1.25)
    dispatch = record.get("moe_dispatch") or {}
    judge("MoE layer over the dense MLP (<= 1.25x)", dispatch.get("ours_over_dense"), "{:.2f}x", lambda v: v <= 1.25)
    judge("MoE layer over TransformerLens's MoE (< 1x)", dispatch.get("ours_over_tl"), "{:.2f}x", lambda v: v < 1)
    for model, v in (record.get("model_flop_utilisation") or {}).get("models", {}).items():
        judge(f"{model} FLOP utilisation (>= 35%)", v["utilisation"], "{:.0%}", lambda u: u >= 0.35)
    counting = record.get("chess_counting_seconds_by_features", {})
    if counting:
        largest = max(counting, key=int)
        judge(f"chess counting at {largest} features (< 60 s)", counting[largest], "{:.1f} s", lambda v: v < 60)
    auto = record.get("autointerp") or {}
    judge("lexical auto-interp (>= 50 features/s)", auto.get("lexical_features_per_second"), "{:.0f}/s",
          lambda v: v >= 50)
    caching = auto.get("caching") or []
    if len(caching) >= 2:
        tokens = caching[-1]["tokens"] / caching[0]["tokens"]
        judge(f"caching peak memory at {tokens:.0f}x the tokens (flat: under 2x)",
              caching[-1]["peak_rss_mib"] / caching[0]["peak_rss_mib"], "{:.2f}x", lambda v: v < 2)
    front = record.get("end_to_end") or {}
    for cache in ("cold", "warm"):  # cold: a fresh clone's first run; warm: positions and floor cached
        judge(f"`make bench` front door, {cache} cache (<= 100 s)",
              (front.get(f"{cache}_cache") or {}).get("wall_seconds"), "{:.0f} s", lambda v: v <= 100)
    return ["## Aims", "", "| aim | now | |", "|---|---|---|", *rows, ""] if rows else []


def _markdown(record: dict) -> list[str]:
    lines = ["# Performance", "", "Parts are measured separately (`--parts`); each names its run.", "",
             *_aims(record)]
    step = record.get("train_step_seconds", {})
    if step:
        ratio = record.get("train_step_ratio_to_dense", {})
        lines += [_when(record, "train"), "", "| model | train step (s) | ratio to dense |", "|---|---|---|"]
        lines += [f"| {m} | {s:.3f} | {ratio.get(m, float('nan')):.2f} |" for m, s in step.items()]
    variants = record.get("dense_step_seconds_by_variant", {})
    if variants:
        lines += ["", _when(record, "variants"), "", "| dense step variant | seconds | ratio to fp32 eager |",
                  "|---|---|---|"]
        lines += [f"| {v} | {t:.3f} | {t / variants['fp32']:.2f} |" for v, t in variants.items()]
    dispatch = record.get("moe_dispatch")
    if dispatch:
        sec = dispatch["seconds"]
        lines += ["", _when(record, "dispatch"), "", "| one MLP layer, forward + backward | seconds | ours over it |",
                  "|---|---|---|",
                  f"| ours (8 x 256, top-2) | {sec['ours']:.4f} | 1.00 |",
                  f"| dense MLP, width 512 (aim: ours <= 1.25x) | {sec['dense']:.4f} | {dispatch['ours_over_dense']:.2f} |",
                  f"| TransformerLens MoE, same experts (gated: 1.5x the FLOPs) | {sec['tl']:.4f} | "
                  f"{dispatch['ours_over_tl']:.2f} ({dispatch['ours_over_tl_per_flop']:.2f} per FLOP) |"]
    prof = record.get("moe_dispatch_profile")
    if prof:
        total = prof["total_ms_per_step"]
        lines += ["", _when(record, "dispatch_profile"), "",
                  "Where the layer's time goes (torch profiler, self CPU ms per forward + backward):", "",
                  "| operator | ours (ms) | dense MLP (ms) |", "|---|---|---|"]
        lines += [f"| {op} | {v['ours']:.2f} | {v['dense']:.2f} |" for op, v in prof["self_ms_per_step"].items()]
        lines += [f"| all operators | {total['ours']:.2f} | {total['dense']:.2f} |"]
    mfu = record.get("model_flop_utilisation")
    if mfu:
        lines += ["", _when(record, "mfu"), "",
                  f"fp32 matmul peak: {mfu['matmul_peak_gflops']:.1f} GFLOP/s (aim: >= 35% utilisation)", "",
                  "| model | GFLOP per step | achieved GFLOP/s | utilisation |", "|---|---|---|---|"]
        lines += [f"| {m} | {v['step_gflop']:.1f} | {v['achieved_gflops']:.1f} | {v['utilisation']:.0%} |"
                  for m, v in mfu["models"].items()]
    counting = record.get("chess_counting_seconds_by_features", {})
    if counting:
        dense = record.get("chess_counting_dense_seconds_by_features", {})
        lines += ["", _when(record, "counting"), "",
                  "| features | coverage + reconstruction counting (s) | every feature counted (s) |",
                  "|---|---|---|"]
        lines += [f"| {f} | {s:.1f} | {dense[f]:.1f} |" if f in dense else f"| {f} | {s:.1f} | - |"
                  for f, s in counting.items()]
        by_positions = record.get("chess_counting_seconds_by_positions", {})
        if by_positions:
            lines += ["", "| positions (train = test) | counting (s) |", "|---|---|"]
            lines += [f"| {n} | {s:.1f} |" for n, s in by_positions.items()]
    auto = record.get("autointerp")
    if auto:
        lines += ["", _when(record, "autointerp"), "",
                  f"Lexical auto-interp: {auto['lexical_features_per_second']:.0f} features/s (target >= 50).",
                  "",
                  "| tokens cached | features | tokens/s | peak RSS (MiB) |", "|---|---|---|---|"]
        lines += [f"| {c['tokens']:,} | {c['features']:,} | {c['tokens_per_second']:,.0f} | {c['peak_rss_mib']:.0f} |"
                  for c in auto["caching"]]
    lines += _superposition_lines(record)
    e2e = record.get("end_to_end")
    if e2e:
        load = (f" ({e2e['other_runnable_before']} other thread(s) wanting a CPU before it)"
                if e2e.get("other_runnable_before") is not None else "")
        lines += ["", _when(record, "end_to_end"), "", f"`{e2e['command']}`{load}:", "",
                  "| cache | wall (s) | CPU (s) | peak RSS, main process (MiB) | peak, all its processes (MiB PSS) |",
                  "|---|---|---|---|---|"]
        lines += [f"| {name.split('_')[0]} | {e2e[name]['wall_seconds']:.0f} | {_maybe(e2e[name], 'cpu_seconds')} | "
                  f"{e2e[name]['peak_rss_mib']:.0f} | {_maybe(e2e[name], 'tree_peak_pss_mib')} |"
                  for name in ("cold_cache", "warm_cache")]
        lines += ["", "CPU and the last peak count every process of the run (the chess floor's second process, "
                  "the position workers). That peak sums proportional set sizes (a page shared by a forked "
                  "process and its parent counts once), sampled every 2 s."]
    return lines


def _maybe(measured: dict, key: str) -> str:
    """A figure older records lack, as `-`."""
    return f"{measured[key]:.0f}" if key in measured else "-"


def _superposition_lines(record: dict) -> list[str]:
    sup = record.get("superposition_step")
    if not sup:
        return []
    lines = ["", _when(record, "superposition"), "",
             f"Superposition training step at the `{sup['preset']}` preset's shapes (batch {sup['batch']}); the fused "
             f"step trains bit-identical weights, one draw a different random stream:", "",
             "| run | straightforward (s) | fused (s) | fused, one draw (s) | fused speed-up | one-draw speed-up |",
             "|---|---|---|---|---|---|"]
    for name, s in sup["seconds"].items():
        up = sup["speedup"][name]
        lines.append(f"| {name} | {s['straightforward']:.3f} | {s['fused']:.3f} | {s['fused_one_draw']:.3f} | "
                     f"{up['fused']:.2f}x | {up['fused_one_draw']:.2f}x |")
    hours = sup["projected_hours"]
    lines += ["", "| projected training (h) | straightforward | fused | fused, one draw |", "|---|---|---|---|"]
    names = {"dense": "dense", "moe": "learned-router MoE", "moex": "MoE-X (timed on the moe form)"}
    lines += [f"| {names[who]} model | " + " | ".join(f"{hours[path][who]:.1f}" for path in
                                                     ("straightforward", "fused", "fused_one_draw")) + " |"
              for who in names if who in hours["fused"]]
    return lines


if __name__ == "__main__":
    main()
