"""Transcoders for the dense+transcoder adapter (Dunefsky et al. 2024, arXiv 2406.11944): a wide sparse
MLP trained to map the dense MLP's input (`blocks.{l}.ln2.hook_normalized`, after the layer norm) to
its output (`blocks.{l}.hook_mlp_out`).

The module is SAELens's own `Transcoder` with SAELens's `TopK` as its activation, so its width (4 x
d_mlp) and L0 (k) are the TopK SAE's of the same preset. SAELens 6.54 trains SAEs only, so the training
loop is ours: Adam on the output's squared error (summed over the output width, mean over tokens), with
the SAE recipe's tokens, batch and learning rate, the gradient norm clipped to 1 and decoder rows kept
at unit norm (as SAELens's SAE trainer does), the output bias started at the mean output and the encoder scaled so that the first outputs
spread as far as the MLP's. Dead latents get the auxiliary loss SAELens's TopK SAEs train with (Gao
et al. 2024, appendix A.2): a latent that has not fired for the SAE trainer's dead-feature window is
dead; the top d_out / 2 dead latents by pre-activation reconstruct the live latents' error through
the decoder (no bias), scaled down while fewer latents than that are dead, coefficient 1.

Saved in SAELens's transcoder format (`cfg.json` with architecture "transcoder", hook_name and
hook_name_out; bf16 `sae_weights.safetensors`) plus our `moexbench.json`, which holds k: SAELens's
"transcoder" class applies ReLU, so `Transcoder.load_from_disk` alone gives a dense ReLU version of
this one; `load_transcoder` puts the TopK back.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from pathlib import Path

import torch

from bench.sae_training import dead_feature_window, read_record
from core.errors import BenchError
from core.progress import progress


def hooks(layer: int) -> tuple[str, str]:
    """(MLP input, MLP output) of block `layer`, in TransformerLens's names."""
    return f"blocks.{layer}.ln2.hook_normalized", f"blocks.{layer}.hook_mlp_out"


def new_transcoder(d_in: int, d_sae: int, d_out: int, k: int, layer: int):
    """A SAELens Transcoder with a TopK(k) activation, reading and writing block `layer`'s MLP hooks."""
    from sae_lens.saes.sae import SAEMetadata
    from sae_lens.saes.topk_sae import TopK
    from sae_lens.saes.transcoder import Transcoder, TranscoderConfig

    if not 0 < k <= d_sae:
        raise BenchError(f"transcoder k={k} must be between 1 and its width {d_sae}")
    read, write = hooks(layer)
    cfg = TranscoderConfig(d_in=d_in, d_sae=d_sae, d_out=d_out, apply_b_dec_to_input=False,
                           metadata=SAEMetadata(hook_name=read, hook_name_out=write, model_name="moexbench"))
    transcoder = Transcoder(cfg)
    transcoder.activation_fn = TopK(k)
    return transcoder


@torch.no_grad()
def paired_stream(model, layer: int, batch_fn, batch_tokens: int, seed: int, mix_batches: int = 8,
                  skip_batches: int = 0):
    """Endless ((batch_tokens, d_model) MLP inputs, (batch_tokens, d_model) MLP outputs) from the task's
    training rows, pooled over `mix_batches` forward passes and shuffled in pairs. `skip_batches` (a
    resumed fit) starts where a stream that had yielded that many would go on, running the model only
    for the pool it resumes in."""
    read, write = hooks(layer)
    gen = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    step = 1_000_000  # the SAE stream's offset: batches the model never trained on at these step numbers
    while True:
        tokens = [batch_fn(step + i) for i in range(mix_batches)]
        step += mix_batches
        rows = sum(t.shape[0] * t.shape[1] for t in tokens)  # one pair of activations per token
        if skip_batches >= rows // batch_tokens:  # a pool already read: only its shuffle advances the generator
            torch.randperm(rows, generator=gen)
            skip_batches -= rows // batch_tokens
            continue
        ins, outs = [], []
        for batch in tokens:
            _, cache = model.run_with_cache(batch.to(device), names_filter=[read, write], stop_at_layer=layer + 1)
            ins.append(cache[read].reshape(-1, cache[read].shape[-1]).float())
            outs.append(cache[write].reshape(-1, cache[write].shape[-1]).float())
        assert sum(len(x) for x in ins) == rows, "skip_batches counts one pair of activations per token"
        order = torch.randperm(rows, generator=gen).to(device)
        x, y = torch.cat(ins)[order], torch.cat(outs)[order]
        usable = len(x) // batch_tokens * batch_tokens
        yield from list(zip(x[:usable].split(batch_tokens), y[:usable].split(batch_tokens)))[skip_batches:]
        skip_batches = 0


def topk_aux_loss(hidden_pre: torch.Tensor, dead: torch.Tensor, residual: torch.Tensor,
                  W_dec: torch.Tensor) -> torch.Tensor:
    """AuxK: the top k_aux = d_out / 2 dead latents by pre-activation (all of them when fewer are
    dead) reconstruct `residual` (target minus output, detached) as acts @ W_dec, no bias; squared
    error summed over the output, mean over tokens, times min(n_dead / k_aux, 1). 0 with none dead.
    SAELens halves the input width, which for an SAE is the output's; a transcoder's error lives in
    the output, so its width sets k_aux (both are d_model here)."""
    n_dead = int(dead.sum())
    if n_dead == 0:
        return hidden_pre.new_zeros(())
    k_aux = residual.shape[-1] // 2
    scale = min(n_dead / k_aux, 1.0)
    top = torch.where(dead, hidden_pre, -torch.inf).topk(min(k_aux, n_dead), dim=-1)
    acts = torch.zeros_like(hidden_pre).scatter(-1, top.indices, top.values)
    return scale * (acts @ W_dec - residual).pow(2).sum(-1).mean()


def train_transcoder(model, layer: int, d_sae: int, settings, batch_fn, seed: int, checkpoints=None):
    """A TopK transcoder for block `layer`'s MLP, trained with `settings` (bench/sae_training.SAESettings:
    tokens, batch_tokens, lr, k), with the AuxK loss on dead latents. With `checkpoints`
    (bench/sae_resume.LoopCheckpoints) the fit saves its state every few minutes and, run again, resumes
    from the last one."""
    stream = paired_stream(model, layer, batch_fn, settings.batch_tokens, seed)
    x, y = next(stream)  # step 0's batch, read first for the start
    torch.manual_seed(seed)
    transcoder = new_transcoder(x.shape[-1], d_sae, y.shape[-1], settings.k, layer).to(x.device)
    with torch.no_grad():  # b_enc is 0, so TopK's output scales with W_enc: match the output's spread
        transcoder.W_dec.div_(transcoder.W_dec.norm(dim=-1, keepdim=True))
        transcoder.b_dec.copy_(y.mean(0))
        start = transcoder.decode(transcoder.encode(x)) - transcoder.b_dec
        transcoder.W_enc.mul_((y - y.mean(0)).norm(dim=-1).mean() / start.norm(dim=-1).mean().clamp_min(1e-8))
    optimiser = torch.optim.Adam(transcoder.parameters(), lr=settings.lr)
    n_steps = settings.tokens // settings.batch_tokens
    window = dead_feature_window(n_steps)  # the TopK SAE's, so both call the same latents dead
    steps_since_fired = torch.zeros(d_sae, device=x.device)
    carried = {"steps_since_fired": steps_since_fired}
    done = checkpoints.restore(transcoder, optimiser, carried) if checkpoints else 0
    if done:  # step s reads the stream's s-th batch
        stream = paired_stream(model, layer, batch_fn, settings.batch_tokens, seed, skip_batches=done)
    bar = progress(total=n_steps, initial=done, desc="transcoder", unit="step")
    for step in range(done, n_steps):
        if checkpoints:
            checkpoints.maybe_save(step, transcoder, optimiser, carried)
        if step:
            x, y = next(stream)
        hidden_pre = transcoder.process_sae_in(x) @ transcoder.W_enc + transcoder.b_enc
        acts = transcoder.activation_fn(hidden_pre)
        out = transcoder.decode(acts)
        mse = (out - y).pow(2).sum(-1).mean()
        aux = topk_aux_loss(hidden_pre, steps_since_fired > window, (y - out).detach(), transcoder.W_dec)
        loss = mse + aux
        with torch.no_grad():
            steps_since_fired += 1
            steps_since_fired[(acts > 0).any(0)] = 0
        if not torch.isfinite(loss):
            raise BenchError(f"transcoder training diverged at step {step} (loss {loss.item()}); lower its lr")
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(transcoder.parameters(), 1.0)  # as SAELens's SAE trainer does
        optimiser.step()
        with torch.no_grad():
            transcoder.W_dec.div_(transcoder.W_dec.norm(dim=-1, keepdim=True).clamp_min(1e-8))
        bar.update(1)
        bar.set_postfix(mse=f"{mse.item():.4f}", aux=f"{aux.item():.4f}")
    bar.close()
    return transcoder.eval()


def save_transcoder(transcoder, folder: Path, record: dict) -> None:
    """SAELens's transcoder format (bf16 weights) plus our record, which holds k; written to a
    temporary folder and renamed, so an interrupted save leaves no half transcoder."""
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    transcoder = copy.deepcopy(transcoder).to(torch.bfloat16)  # the caller's copy stays as it was
    transcoder.cfg.dtype = "bfloat16"
    transcoder.save_model(tmp)
    (tmp / "moexbench.json").write_text(json.dumps(record, indent=2) + "\n")
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)


def load_transcoder(folder: Path, layer: int, d_model: int):
    """The transcoder in a SAELens folder, in float32, checked to read and write block `layer`'s MLP
    of a d_model-wide model. Its activation is TopK(k) when our record names k; a transcoder from
    elsewhere (no record) keeps the activation its SAELens class has."""
    from sae_lens import SAE
    from sae_lens.saes.topk_sae import TopK

    if not (folder / "cfg.json").exists():
        raise BenchError(f"{folder} is not a SAELens transcoder folder (no cfg.json)")
    try:
        transcoder = SAE.load_from_disk(str(folder), dtype="float32")
    except Exception as e:  # noqa: BLE001 - SAELens raises many kinds for a damaged folder; all mean the same
        raise BenchError(f"transcoder folder {folder} is damaged ({type(e).__name__}: {str(e)[:160]}); delete it "
                         f"to retrain, or restore it") from None
    meta = transcoder.cfg.metadata
    found = (getattr(meta, "hook_name", None), getattr(meta, "hook_name_out", None))
    _check_hooks(folder, found, layer, hasattr(transcoder, "d_out"))
    _check_widths(folder, transcoder.cfg.d_in, transcoder.d_out, d_model)
    record = read_record(folder)
    if record and "k" in record:
        transcoder.activation_fn = TopK(record["k"])
    return transcoder.eval()


def check_folder_fits(folder: Path, layer: int, d_model: int) -> None:
    """Your transcoder folder against block `layer`'s MLP of a d_model-wide model, from its cfg.json
    alone (read as SAELens reads it), before any work. Loading checks the same on the loaded
    transcoder; a cfg.json SAELens cannot read is left for loading to name."""
    from bench.sae_store import encoder_rows, saelens_cfg

    cfg = saelens_cfg(folder)
    if cfg is None:
        return
    meta = cfg.get("metadata") if isinstance(cfg.get("metadata"), dict) else {}
    # SAELens's transcoder classes save their output width and name their architecture so; its SAEs do neither
    is_transcoder = "d_out" in cfg or "transcoder" in str(cfg.get("architecture", ""))
    _check_hooks(folder, (meta.get("hook_name"), meta.get("hook_name_out")), layer, is_transcoder)
    d_in, d_out = cfg.get("d_in"), cfg.get("d_out")
    if isinstance(d_in, int) and isinstance(d_out, int) and d_in == encoder_rows(folder):
        _check_widths(folder, d_in, d_out, d_model)  # else cfg.json and weights disagree: loading names it damaged


def _check_hooks(folder: Path, found: tuple, layer: int, is_transcoder: bool) -> None:
    """A transcoder whose hooks (`found`: read, written) are block `layer`'s MLP input and output."""
    if not is_transcoder:
        of = f" of {found[0]}" if found[0] else ""
        raise BenchError(f"{folder} holds a SAELens SAE{of}, not a transcoder (its cfg.json has no d_out); "
                         f"score it with MOEXBENCH_SAE_PATH and MODEL=dense+sae, or give a transcoder folder")
    read, write = hooks(layer)
    if found != (read, write):
        raise BenchError(f"{folder} is not a transcoder of block {layer}'s MLP (it reads {found[0]} and writes "
                         f"{found[1]}; this needs {read} -> {write}); score its layer with ARGS='layer=<l>'")


def _check_widths(folder: Path, d_in: int, d_out: int, d_model: int) -> None:
    if (d_in, d_out) != (d_model, d_model):
        raise BenchError(f"{folder} maps {d_in} -> {d_out} wide activations, but this model's MLP is "
                         f"{d_model} -> {d_model}: it was fitted on another model; give one fitted on this model's MLP")
