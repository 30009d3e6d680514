"""A `dictionary_learning` SAE (what Karvonen's chess and Othello SAEs are saved as: `ae.pt`, a state
dict) rewritten as a SAELens folder, which the harness reads (`+sae:<folder>`, MOEXBENCH_SAE_PATH):

    python -m bench.convert_sae --ae path/to/ae.pt --hook blocks.5.hook_resid_post --out my-sae

Only the standard `AutoEncoder` is converted (its trainers `standard` and `p_anneal` save it):
features = ReLU(encoder(x - bias)), reconstruction = decoder(features) + bias, which is SAELens's
`StandardSAE` with W_enc = encoder.weight.T, b_enc = encoder.bias, W_dec = decoder.weight.T,
b_dec = bias (SAELens subtracts b_dec from the input before encoding, as `dictionary_learning` does).
The conversion checks that both give the same features and reconstruction on random inputs before it
writes. The features are the saved weights' own: `AutoEncoder.from_pretrained` by default rescales
each feature by its decoder norm, a positive factor per feature, which changes no chess score here
(thresholds are fractions of each feature's maximum) and no reconstruction. `--hook` names the TransformerLens hook the SAE reads (Karvonen's residual-stream SAEs after
block l: `blocks.<l>.hook_resid_post`); the folder is written whole or not at all.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from core.errors import NOTHING_WRITTEN, BenchError, run_command
from core.new_folder import check_new, write_new_folder

AUTOENCODER_KEYS = {"encoder.weight", "encoder.bias", "decoder.weight", "bias"}


def read_autoencoder(path: Path) -> dict[str, torch.Tensor]:
    """The state dict of a standard dictionary_learning AutoEncoder, checked; one line otherwise."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise BenchError(f"{path} does not exist; give the SAE's ae.pt") from None
    except Exception as e:  # pickle errors, truncated zip archives
        first = str(e).strip().splitlines()[0][:120] if str(e).strip() else ""
        raise BenchError(f"{path} is not a torch state dict ({type(e).__name__}: {first}); give a "
                         f"dictionary_learning ae.pt") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise BenchError(f"{path} is not a state dict of tensors; give a dictionary_learning ae.pt")
    if set(state) != AUTOENCODER_KEYS:
        raise BenchError(f"{path} holds {', '.join(sorted(state))}: not a standard dictionary_learning AutoEncoder "
                         f"({', '.join(sorted(AUTOENCODER_KEYS))}); gated, top-k and JumpReLU ones are not converted")
    d_sae, d_in = state["encoder.weight"].shape
    expected = {"encoder.bias": (d_sae,), "decoder.weight": (d_in, d_sae), "bias": (d_in,)}
    for key, shape in expected.items():
        if tuple(state[key].shape) != shape:
            raise BenchError(f"{path}: {key} is {tuple(state[key].shape)}, expected {shape} for "
                             f"encoder.weight {(d_sae, d_in)}")
    return {k: v.float() for k, v in state.items()}


def to_saelens(state: dict[str, torch.Tensor], hook: str):
    """The SAELens StandardSAE computing the same function, checked on random inputs."""
    from sae_lens import StandardSAE, StandardSAEConfig
    from sae_lens.saes.sae import SAEMetadata

    d_sae, d_in = state["encoder.weight"].shape
    sae = StandardSAE(StandardSAEConfig(d_in=d_in, d_sae=d_sae, apply_b_dec_to_input=True,
                                        metadata=SAEMetadata(hook_name=hook)))
    with torch.no_grad():
        sae.W_enc.copy_(state["encoder.weight"].T)
        sae.b_enc.copy_(state["encoder.bias"])
        sae.W_dec.copy_(state["decoder.weight"].T)
        sae.b_dec.copy_(state["bias"])
        x = state["bias"] + torch.randn(64, d_in, generator=torch.Generator().manual_seed(0))  # around the centre
        theirs = torch.relu((x - state["bias"]) @ state["encoder.weight"].T + state["encoder.bias"])
        ours = sae.encode(x)
        if not (torch.allclose(ours, theirs, atol=1e-5) and
                torch.allclose(sae.decode(ours), theirs @ state["decoder.weight"].T + state["bias"], atol=1e-5)):
            raise BenchError("the converted SAE does not compute the AutoEncoder's features; nothing was written "
                             "(a bug in the conversion: please report it)")
    return sae


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ae", type=Path, required=True, help="the dictionary_learning ae.pt")
    parser.add_argument("--hook", required=True, help="the TransformerLens hook it reads, e.g. blocks.5.hook_resid_post")
    parser.add_argument("--out", type=Path, required=True, help="a new folder for the SAELens SAE")
    args = parser.parse_args(argv)

    def body():
        check_new(args.out)
        sae = to_saelens(read_autoencoder(args.ae), args.hook)
        write_new_folder(args.out, lambda folder: sae.save_model(str(folder)))
        print(f"wrote {args.out}: a SAELens StandardSAE, {sae.cfg.d_sae} latents over {args.hook} "
              f"({sae.cfg.d_in} wide); use it with MODEL=<model>+sae:{args.out} or MOEXBENCH_SAE_PATH={args.out}")

    return run_command(body, on_interrupt=NOTHING_WRITTEN)


if __name__ == "__main__":
    sys.exit(main())
