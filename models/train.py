"""Training loop shared by every model and task: AdamW, warmup + cosine, grad clipping, bf16
autocast where the device has it, periodic resumable checkpoints, validation loss, DDP.

Batches come from `batch_fn(step)`, a pure function of the step, so a resumed run sees exactly the
batches an uninterrupted one would, and under torchrun each rank takes its slice of the same
global batch. The resume state (fp32 weights, optimizer moments, history) lives in `run_dir`; the
finished model is written to `final_stem` as a bf16 checkpoint.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist

from core.errors import BenchError
from core.results import atomic_write_text
from models.checkpoint import load_tensors, save_model, save_tensors
from models.config import TrainConfig
from models.gpt import GPT, auxiliary_loss
from core.validation import validation_loss


def lr_at(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps))
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * progress))


def _world() -> tuple[int, int]:
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        if not dist.is_initialized():
            dist.init_process_group("gloo" if not torch.cuda.is_available() else "nccl")
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _optimizer(model: GPT, cfg: TrainConfig) -> torch.optim.AdamW:
    # No weight decay on biases, norms and embeddings' positions of one dimension (nanoGPT's rule).
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.95))


def _save_state(run_dir: Path, model: GPT, opt: torch.optim.Optimizer, step: int, fingerprint: dict,
                history: list, seconds_since_eval: float, cpu_seconds_since_eval: float | None = None) -> None:
    """One file: the tensors, with the step, fingerprint and history in its metadata, so a crash can
    never leave weights of one step beside the bookkeeping of another. state.json is a readable copy."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    for i, state in opt.state_dict()["state"].items():
        for key, value in state.items():
            tensors[f"opt.{i}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
    # The time trained since the last history record, so that a resumed run's next record counts
    # the steps it kept from before the interruption: wall-clock, and this process's CPU time (None
    # when a run begun before CPU time was kept cannot know its total).
    meta = {"step": step, "fingerprint": fingerprint, "history": history, "seconds_since_eval": seconds_since_eval,
            "cpu_seconds_since_eval": cpu_seconds_since_eval}
    save_tensors(run_dir / "state.safetensors", tensors, metadata={"state": json.dumps(meta)})
    atomic_write_text(run_dir / "state.json", json.dumps(meta, indent=2, sort_keys=True) + "\n")


def read_state_meta(run_dir: Path) -> dict:
    from safetensors import safe_open

    path = run_dir / "state.safetensors"
    try:
        with safe_open(str(path), "pt") as f:
            embedded = (f.metadata() or {}).get("state")
        # A state saved before the bookkeeping moved into the file has only state.json beside it.
        meta = json.loads(embedded if embedded is not None else (run_dir / "state.json").read_text())
        if not isinstance(meta, dict) or not {"step", "fingerprint", "history"} <= set(meta):
            raise ValueError("fields missing")
    except Exception as e:  # noqa: BLE001 - any damage to the file means the same thing
        raise BenchError(f"resume state {path} is unreadable ({type(e).__name__}: {e}); delete {run_dir} to start "
                         f"over") from None
    return meta


def _first_difference(key: str, then, now, unrecorded: dict | None = None) -> str:
    """The dotted name of the first field that differs (train_config.lr, not the whole dict).
    `unrecorded`: top-level fields a task leaves out of the fingerprint at their default (so that runs
    from before the field still resume), with that default, so a refusal names it."""
    if isinstance(then, dict) and isinstance(now, dict):
        for k in sorted(set(then) | set(now)):
            if then.get(k) != now.get(k):
                return _first_difference(f"{key}.{k}", then.get(k), now.get(k))

    def said(value):
        if value is None:
            default = (unrecorded or {}).get(key)
            return f"{default!r}, the default, not recorded" if default is not None else "not recorded: its default"
        return repr(value)

    return f"{key} differs (checkpoint {said(then)}, now {said(now)})"


def _load_state(run_dir: Path, model: GPT, opt: torch.optim.Optimizer, fingerprint: dict,
                unrecorded: dict | None = None) -> tuple[int, list, float, float | None]:
    meta = read_state_meta(run_dir)
    for key in sorted(set(fingerprint) | set(meta["fingerprint"])):
        if fingerprint.get(key) != meta["fingerprint"].get(key):
            differs = _first_difference(key, meta["fingerprint"].get(key), fingerprint.get(key), unrecorded)
            raise BenchError(f"cannot resume {run_dir}: {differs}; delete {run_dir} to start over or restore the "
                             f"old setting")
    tensors = load_tensors(run_dir / "state.safetensors")
    own = model.state_dict()
    saved = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    if set(saved) != set(own) or any(own[k].shape != v.shape for k, v in saved.items()):
        raise BenchError(f"resume state {run_dir}/state.safetensors does not fit this model; delete {run_dir} to "
                         f"start over")
    model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
    opt_state = opt.state_dict()
    for i in range(sum(len(g["params"]) for g in opt_state["param_groups"])):
        prefix = f"opt.{i}."
        entry = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        if entry:
            opt_state["state"][i] = entry
    opt.load_state_dict(opt_state)
    cpu = meta.get("cpu_seconds_since_eval")
    return meta["step"], meta["history"], float(meta.get("seconds_since_eval", 0.0)), \
        None if cpu is None else float(cpu)


def train(model: GPT, cfg: TrainConfig, batch_fn: Callable[[int], torch.Tensor], val_tokens: torch.Tensor,
          run_dir: Path, final_stem: Path, fingerprint: dict, meta: dict,
          on_eval: Callable[[GPT, int], dict] | None = None, progress: bool = True,
          unrecorded: dict | None = None) -> list[dict]:
    """Train to cfg.steps, resuming from run_dir when it holds a state; returns the history.
    `unrecorded`: fingerprint fields left out at their default, with it (_first_difference)."""
    from core.progress import progress as progress_bar

    rank, world = _world()
    if cfg.batch_size % world:
        raise BenchError(f"batch_size {cfg.batch_size} does not split over {world} processes")
    fingerprint = {**fingerprint, "model_config": model.cfg.to_json(), "train_config": asdict(cfg)}
    opt = _optimizer(model, cfg)
    step, history, carried, carried_cpu = 0, [], 0.0, 0.0
    run_dir.mkdir(parents=True, exist_ok=True)
    if (run_dir / "state.safetensors").exists():
        step, history, carried, carried_cpu = _load_state(run_dir, model, opt, fingerprint, unrecorded)
    # Wall-clock time depends on what else the machine runs; CPU time (this process's, every thread)
    # much less, so runs made beside different loads compare by it. Kept only while its total is known.
    cpu_known = carried_cpu is not None and all("cpu_seconds" in r for r in history)
    cpu_started = time.process_time() - (carried_cpu or 0.0)
    ddp = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    device = next(model.parameters()).device
    local = slice(rank * cfg.batch_size // world, (rank + 1) * cfg.batch_size // world)
    last_save, started, tokens_seen, saved_step = time.time(), time.time() - carried, 0, step
    bar = progress_bar(total=cfg.steps, initial=step, desc="training", unit="step", enabled=progress and rank == 0)
    train_loss = float("nan")
    while step < cfg.steps:
        batch = batch_fn(step)[local].to(device)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
            loss = ddp(batch, return_type="loss")
        if not torch.isfinite(loss):
            kept = f"last good state kept at {run_dir}/state.safetensors (step {saved_step})" if saved_step else \
                "no state saved yet"
            raise BenchError(f"loss became {loss.item()} at step {step}; stopped, {kept}; "
                             f"lower the learning rate or check the data")
        opt.zero_grad(set_to_none=True)
        (loss + auxiliary_loss(model)).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        step += 1
        tokens_seen += batch.numel() * world
        train_loss = loss.item()
        bar.set_postfix(loss=f"{train_loss:.3f}", tok_s=f"{tokens_seen / (time.time() - started):.0f}")
        bar.update(1)
        if step % cfg.eval_every == 0 or step == cfg.steps:
            record = {"step": step, "train_loss": train_loss, "tokens": step * cfg.batch_size * batch.shape[1],
                      "val_loss": validation_loss(model, val_tokens, cfg.batch_size, cfg.bf16),
                      "seconds": (history[-1]["seconds"] if history else 0.0) + time.time() - started}
            if cpu_known:
                record["cpu_seconds"] = (history[-1]["cpu_seconds"] if history else 0.0) + time.process_time() - cpu_started
            if on_eval is not None and rank == 0:
                record.update(on_eval(model, step))
            history.append(record)
            started, cpu_started, tokens_seen = time.time(), time.process_time(), 0
            bar.write(json.dumps(record))
        if rank == 0 and (time.time() - last_save > cfg.checkpoint_every_s or step == cfg.steps):
            _save_state(run_dir, model, opt, step, fingerprint, history, time.time() - started,
                        time.process_time() - cpu_started if cpu_known else None)
            last_save, saved_step = time.time(), step
    bar.close()
    if rank == 0:
        save_model(final_stem, model, {**meta, "train_config": asdict(cfg), "history": history,
                                       "fingerprint": fingerprint})
    if world > 1:
        dist.barrier()
    return history
