"""moexbench: train models and run task evaluations over model adapters.

    moexbench bench [--model moex] [--task chess] [--preset cpu] [--seed 0] [KEY=VALUE ...]
    moexbench train --model dense --task chess --preset cpu
    moexbench list
    moexbench export --format saebench --task language --preset cpu
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from bench import export_saebench
from bench.registry import MODELS, PRESETS, TASKS
from core.arguments import OneLineParser
from core.errors import FILES_WHOLE, NOTHING_WRITTEN, RESUMES, BenchError, run_command
from core.threads import add_threads_argument


def _seed(text: str) -> int:
    if not text.isdigit() or int(text) >= 2**63:  # torch.manual_seed's range
        raise argparse.ArgumentTypeError(f"{text!r} is not a seed; write a whole number, 0 or more")
    return int(text)


def _parser() -> argparse.ArgumentParser:
    epilog = (f"models: {', '.join(MODELS)}\ntasks: {', '.join(TASKS)}\npresets: {', '.join(PRESETS)}\n"
              "KEY=VALUE settings are the task config's fields (see tasks/<task>/config.py).")
    parser = OneLineParser(prog="moexbench", description="MoE-X Bench: interpretability of MoE-X vs dense models "
                           "and SAEs", epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("bench", "evaluate a model on a task (trains it first if no checkpoint)"),
                            ("train", "train (or resume) a model for a task")):
        p = sub.add_parser(name, help=help_text, epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("--model", default="moex", help="model name, or 'all' (bench only); a model of your own: "
                       "hf:<folder>, nanogpt:<ckpt.pt>, either optionally +sae:<SAELens folder>")
        p.add_argument("--task", default="chess")
        p.add_argument("--preset", default="cpu")
        p.add_argument("--seed", type=_seed, default=0)
        p.add_argument("--device", default="cpu")
        add_threads_argument(p)
        p.add_argument("--quiet", action="store_true", help="no progress bars (also under CI=true or MOEXBENCH_QUIET=1)")
        if name == "bench":
            p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="task config settings")
    rep = sub.add_parser("report", help="rewrite a task's summary table and plot from its results JSON")
    rep.add_argument("--task", default="chess")
    rep.add_argument("--preset", default="cpu")
    rep.add_argument("--variant", default=None,
                     help="a variant folder of the task's results (e.g. llm: the language task's LLM backend); "
                          "under MOEXBENCH_<TASK>_DATA, your data's folder is added to it, as the bench names it")
    sub.add_parser("list", help="list models, tasks and presets")
    export_saebench.register(sub)
    return parser


def _setup(args) -> None:
    import torch

    if args.quiet:  # through the environment, so that child processes are quiet too
        os.environ["MOEXBENCH_QUIET"] = "1"

    torch.set_num_threads(max(1, args.threads))
    try:
        torch.device(args.device)
    except RuntimeError:
        raise BenchError(f"device {args.device!r} is not a torch device; use DEVICE=cpu or DEVICE=cuda") from None
    if args.device not in ("cpu",) and not args.device.startswith("cuda"):
        raise BenchError(f"device {args.device!r} is not supported here; use DEVICE=cpu or DEVICE=cuda")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise BenchError(f"device {args.device!r} requested but CUDA is not available here; use DEVICE=cpu")


def cmd_train(args) -> None:
    from bench import registry
    from bench.model_store import train_model

    adapter_cls, task = registry.model_adapter(args.model), registry.task(args.task)
    registry.check_preset(args.preset, task)
    _setup(args)
    # `make train` is asked to train: MOEXBENCH_NO_TRAIN guards `make bench` (and the gate) only, and an
    # SAE's base model and the SAE itself are trained here as a plain model is
    os.environ.pop("MOEXBENCH_NO_TRAIN", None)
    if adapter_cls.base_model:  # an SAE over another model: train (or load) that model, then the SAE
        from bench.model_store import load_or_train
        from bench.sae_store import attach_features

        adapter, _, _ = load_or_train(adapter_cls, task, args.preset, args.seed, args.device)
        attach_features(adapter, task, args.preset, args.seed, task.Config(), args.device, role="trained")
        print(f"SAE ready: {adapter.sae_source.get('source')}")
        return
    stem = train_model(adapter_cls, task, args.preset, args.seed, args.device)
    print(f"wrote {stem}.safetensors")


def cmd_bench(args) -> None:
    from bench import registry
    from bench.own_dictionary import any_set

    task = registry.task(args.task)
    registry.check_preset(args.preset, task)
    names = list(MODELS) if args.model == "all" else [args.model]
    if args.model == "all" and (variable := any_set()):
        raise BenchError(f"MODEL=all scores the committed models and dictionaries, and {variable} is set here; "
                         f"unset it, or name the one model that reads your dictionary (MODEL=dense+sae)")
    from core.task_config import apply_overrides

    # Bad input that is cheap to see fails first: model names, settings, device.
    for name in names:
        registry.check_model_name(name)
    task_settings = apply_overrides(task.Config(), args.overrides)
    _setup(args)
    from bench.run_target import checked_target, settings_for

    adapters = [registry.model_adapter(n) for n in names]
    configs = [settings_for(adapter_cls, task, args.overrides) for adapter_cls in adapters]
    for adapter_cls, config in zip(adapters, configs):
        checked_target(adapter_cls, task, config, args.preset, args.seed)  # every refusal before any work
    # What the evaluation needs and no model does (chess: the position labels) starts now, beside the
    # import of the models' libraries (seconds); the model's own settings do not change it.
    task.prepare(task_settings, args.preset)
    from bench.runner import run_bench

    for adapter_cls, config in zip(adapters, configs):
        started = time.time()
        path = run_bench(adapter_cls, task, config, args.preset, args.seed, args.device)
        _print_run(task, adapter_cls.name, args.preset, path, time.time() - started)


def _print_run(task, model: str, preset: str, path, seconds: float) -> None:
    """What the run found, then where it wrote it."""
    from bench.headline import run_table
    from bench.report import paper_numbers
    from core.results import load_result

    print(f"\n{model} on {task.name}:")
    print("\n".join(run_table(task.name, load_result(path)["metrics"], paper_numbers(task.name, preset).get(model, {}))))
    print(f"wrote {path} ({seconds:.0f} s)")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # what Ctrl-C leaves: training resumes; a report or an export has each file it wrote whole
    on_interrupt = {"bench": RESUMES, "train": RESUMES, "list": NOTHING_WRITTEN}.get(args.command, FILES_WHOLE)
    return run_command(lambda: _dispatch(args), on_interrupt=on_interrupt)


def _variant_folders(task: str, preset: str) -> list[str]:
    """The variant folders beside a preset's main results: those holding a result of the contract."""
    from bench.registry import PRESETS
    from core.results import NOT_VARIANTS, load_result, result_dir, result_files

    main = result_dir(task, preset)
    names = []
    for folder in sorted(main.iterdir()) if main.is_dir() else []:
        if folder.is_dir() and folder.name not in (*PRESETS, *NOT_VARIANTS):
            try:
                if any("schema_version" in load_result(f) for f in result_files(folder)):
                    names.append(folder.name)
            except BenchError:
                continue
    return names


def _dispatch(args) -> None:
    if args.command == "list":
        print("models:  " + ", ".join(MODELS))
        print("         yours: hf:<folder>, nanogpt:<ckpt.pt>, either optionally +sae:<SAELens folder>")
        print("tasks:   " + ", ".join(TASKS))
        print("presets: " + ", ".join(PRESETS))
    elif args.command == "report":
        from bench import registry
        from bench.model_identity import summary_lines
        from bench.report import headline_lines, write_summary
        from core.own_data import variant_part
        from core.results import result_dir, result_files

        task = registry.task(args.task)
        registry.check_preset(args.preset, task)
        asked = args.variant
        result_dir(args.task, args.preset, asked)  # refuses a VARIANT that is not a plain name
        own = variant_part(task)
        if own and not (asked or "").endswith(own):  # on your own data: its folder, as the bench names it
            args.variant = "_".join(part for part in (asked, own) if part)
        folder = result_dir(args.task, args.preset, args.variant)
        if (asked or own) and not folder.is_dir():
            there = _variant_folders(args.task, args.preset)
            if own:  # the VARIANT values that name a folder of your data's results
                there = [name.removesuffix(own).rstrip("_") or "(unset)" for name in there if name.endswith(own)]
            raise BenchError(f"no results in {folder} (VARIANT={asked or ''}); run the bench with those settings "
                             f"first, or choose VARIANT from: {', '.join(there) or 'none'}")
        if not asked and not own and not (folder.is_dir() and any(result_files(folder))):
            there = _variant_folders(args.task, args.preset)
            if there:  # runs at another layer or site only: their folders are the variants
                raise BenchError(f"no results in {folder} from the default settings; choose VARIANT from: "
                                 f"{', '.join(there)} (make report ... VARIANT=<folder>)")
        paths = write_summary(args.task, args.preset, args.variant)
        paths += task.figures(args.preset, args.variant)  # drawn from the results files too, nothing recomputed
        print("\n".join(headline_lines(args.task, args.preset, args.variant)))
        for mixed in summary_lines(args.task, args.preset, folder):  # also at the top of summary.md
            print(f"warning: {mixed}", file=sys.stderr)
        for path in paths:
            print(f"wrote {path}")
    elif args.command == "export":
        export_saebench.run(args, _setup)
    elif args.command == "train":
        cmd_train(args)
    else:
        cmd_bench(args)


if __name__ == "__main__":
    sys.exit(main())
