"""Quick SAE calibration: how a sparsity setting lands in L0 on a task's dense model, without the
task's evaluation. Each point trains a short SAE with SAELens and reports L0, explained variance,
loss recovered and dead fraction on 64 validation rows (core/fidelity.py). This is how the settings
in bench/sae_training.py were picked (at the cpu preset's 1M tokens; the default 250,000 is quicker):

    python -m experiments.sae_calibrate standard:l1_coefficient:10 gated:l1_coefficient:10 \
        jumprelu:jumprelu_init_threshold:0.7 --tokens 1000000

A point may set several settings (`jumprelu:batch_tokens:1024:jumprelu_init_threshold:0.5`);
`--random-init` fits on the random-init model, as the random-init floor's SAE is.

Nothing is saved; the SAEs live in a temporary folder for the round trip through SAELens's format.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from core.arguments import OneLineParser
from core.errors import BenchError, run_command
from core.threads import add_threads_argument


def calibrate(points: list[str], task_name: str, preset: str, tokens: int, threads: int,
              random_init: bool = False) -> None:
    import torch

    from adapters.sae import SAEAdapter
    from bench import registry
    from bench import sae_training as st
    from bench.model_store import build_random, load_or_train
    from core.fidelity import fidelity

    parsed = [_parse(point, st) for point in points]  # every point checked before a model is loaded
    torch.set_num_threads(threads)
    task = registry.task(task_name)
    dense = registry.model_adapter("dense")
    # the floor's SAE is fitted on the random-init model the bench builds for seed 0 (bench/runner.py)
    base = (dense(build_random(dense, task, preset, 0 + 1_000).eval()) if random_init else
            load_or_train(dense, task, preset, 0, "cpu", train_if_missing=False)[0])
    config = task.Config()
    data = task.training_data(preset, 0)
    hook = base.site_hook(config.layer, config.site)
    for point, architecture, overrides in parsed:
        settings = st.settings_for(architecture, preset, tokens=tokens, **overrides)
        started = time.time()
        sae = st.train_sae(base.model, hook, settings.latents_per_d_mlp * base.model.cfg.d_mlp, settings,
                           data.batch_fn, 0, "cpu")
        with tempfile.TemporaryDirectory() as tmp:
            st.save_sae(sae, Path(tmp) / "sae", {})
            adapter = SAEAdapter(base.model)
            adapter.sae, adapter.sae_hook = st.load_sae(Path(tmp) / "sae"), hook
            f = fidelity(adapter, data.val_tokens[:64], config.layer, config.site)
        print(f"{point}: L0 {f['l0_fidelity']:.1f} EV {f['explained_variance']:.3f} loss recovered "
              f"{f['loss_recovered']:.3f} dead {f['dead_fraction']:.2f} ({time.time() - started:.0f} s)", flush=True)


def _parse(point: str, st) -> tuple[str, str, dict]:
    """ARCH:SETTING:VALUE[:SETTING:VALUE...] -> (point, architecture, settings), each value of its field's type."""
    architecture, *pairs = point.split(":")
    if not pairs or len(pairs) % 2:
        raise BenchError(f"point {point!r} is not ARCH:SETTING:VALUE[:SETTING:VALUE...], e.g. "
                         f"standard:l1_coefficient:3")
    defaults, overrides = st.SAESettings(architecture), {}
    for knob, value in zip(pairs[::2], pairs[1::2]):
        if knob == "tokens":
            raise BenchError(f"point {point!r}: the training length is --tokens, the same for every point")
        if not hasattr(defaults, knob) or knob == "architecture":
            raise BenchError(f"{knob!r} is not an SAE setting; see SAESettings in bench/sae_training.py")
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        kind = type(getattr(defaults, knob))
        if number != number or abs(number) == float("inf") or (kind is int and not number.is_integer()):
            raise BenchError(f"point {point!r}: {knob} needs a finite {'whole ' if kind is int else ''}number, "
                             f"not {value!r}")
        overrides[knob] = kind(number)  # batch_tokens and k stay ints
    st.settings_for(architecture, "cpu")  # an unknown architecture: its one line
    return point, architecture, overrides


def main(argv=None) -> int:
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("points", nargs="+", metavar="ARCH:SETTING:VALUE[:SETTING:VALUE...]")
    parser.add_argument("--random-init", action="store_true", help="fit on the random-init model (the floor's SAE)")
    parser.add_argument("--task", default="chess")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--tokens", type=int, default=250_000)
    add_threads_argument(parser)
    args = parser.parse_args(argv)
    return run_command(lambda: calibrate(args.points, args.task, args.preset, args.tokens, args.threads,
                                                 args.random_init))


if __name__ == "__main__":
    sys.exit(main())
