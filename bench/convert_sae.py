"""A `dictionary_learning` SAE (what Karvonen's chess and Othello SAEs are saved as: `ae.pt`, a state
dict) rewritten as a SAELens folder, which the harness reads (`+sae:<folder>`, MOEXBENCH_SAE_PATH):

    python -m bench.convert_sae --ae path/to/ae.pt --hook blocks.5.hook_resid_post --out my-sae

Two layouts are converted, told apart by their keys:
- the standard `AutoEncoder` (trainers `standard`, `p_anneal`): features = ReLU(encoder(x - bias)),
  reconstruction = decoder(features) + bias; SAELens's `StandardSAE` with W_enc = encoder.weight.T,
  b_enc = encoder.bias, W_dec = decoder.weight.T, b_dec = bias;
- the `GatedAutoEncoder` (trainers `gated`, `gated_anneal`): with e = encoder(x - decoder_bias),
  features = [e + gate_bias > 0] * ReLU(exp(r_mag) * e + mag_bias), reconstruction =
  decoder(features) + decoder_bias; SAELens's `GatedSAE` with W_enc = encoder.weight.T,
  b_gate = gate_bias, r_mag = r_mag, b_mag = mag_bias, W_dec = decoder.weight.T, b_dec = decoder_bias.
SAELens subtracts b_dec from the input before encoding, as `dictionary_learning` does. The conversion
checks that both give the same features and reconstruction on random inputs before it writes. The
features are the saved weights' own: `from_pretrained` may rescale each feature by its decoder norm, a
positive factor per feature, which changes no chess score here (thresholds are fractions of each
feature's maximum) and no reconstruction. Top-k and JumpReLU layouts are refused in one line. `--hook`
names the TransformerLens hook the SAE reads (Karvonen's residual-stream SAEs after block l:
`blocks.<l>.hook_resid_post`); the folder is written whole or not at all.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from core.arguments import OneLineParser
from core.errors import NOTHING_WRITTEN, BenchError, run_command
from core.new_folder import check_new, write_new_folder

# Each layout's keys, and each key's shape in terms of (d_sae, d_in) read from encoder.weight.
LAYOUTS = {
    "standard": {"encoder.weight": ("d_sae", "d_in"), "encoder.bias": ("d_sae",), "decoder.weight": ("d_in", "d_sae"),
                 "bias": ("d_in",)},
    "gated": {"encoder.weight": ("d_sae", "d_in"), "decoder.weight": ("d_in", "d_sae"), "decoder_bias": ("d_in",),
              "gate_bias": ("d_sae",), "mag_bias": ("d_sae",), "r_mag": ("d_sae",)},
}


def read_dictionary(path: Path) -> tuple[str, dict[str, torch.Tensor]]:
    """(layout, state dict) of a dictionary_learning AutoEncoder or GatedAutoEncoder, checked; one
    line otherwise."""
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
    layout = next((name for name, keys in LAYOUTS.items() if set(state) == set(keys)), None)
    if layout is None:
        raise BenchError(f"{path} holds {', '.join(sorted(state))}: neither a dictionary_learning AutoEncoder "
                         f"({', '.join(sorted(LAYOUTS['standard']))}) nor a GatedAutoEncoder "
                         f"({', '.join(sorted(LAYOUTS['gated']))}); top-k and JumpReLU ones are not converted")
    if state["encoder.weight"].dim() != 2:
        raise BenchError(f"{path}: encoder.weight is {tuple(state['encoder.weight'].shape)}, expected (d_sae, d_in)")
    sizes = dict(zip(("d_sae", "d_in"), state["encoder.weight"].shape))
    for key, dims in LAYOUTS[layout].items():
        expected = tuple(sizes[d] for d in dims)
        if tuple(state[key].shape) != expected:
            raise BenchError(f"{path}: {key} is {tuple(state[key].shape)}, expected {expected} for "
                             f"encoder.weight {(sizes['d_sae'], sizes['d_in'])}")
    return layout, {k: v.float() for k, v in state.items()}


def _theirs(layout: str, state: dict, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Features and reconstruction as dictionary_learning computes them, written out from the state."""
    if layout == "standard":
        features = torch.relu((x - state["bias"]) @ state["encoder.weight"].T + state["encoder.bias"])
        return features, features @ state["decoder.weight"].T + state["bias"]
    e = (x - state["decoder_bias"]) @ state["encoder.weight"].T
    features = (e + state["gate_bias"] > 0).float() * torch.relu(state["r_mag"].exp() * e + state["mag_bias"])
    return features, features @ state["decoder.weight"].T + state["decoder_bias"]


def to_saelens(state: dict[str, torch.Tensor], hook: str, layout: str = "standard"):
    """The SAELens SAE (StandardSAE or GatedSAE) computing the same function, checked on random inputs."""
    import sae_lens
    from sae_lens.saes.sae import SAEMetadata

    d_sae, d_in = state["encoder.weight"].shape
    sae_cls, cfg_cls = {"standard": (sae_lens.StandardSAE, sae_lens.StandardSAEConfig),
                        "gated": (sae_lens.GatedSAE, sae_lens.GatedSAEConfig)}[layout]
    sae = sae_cls(cfg_cls(d_in=d_in, d_sae=d_sae, apply_b_dec_to_input=True, metadata=SAEMetadata(hook_name=hook)))
    centre = state["bias"] if layout == "standard" else state["decoder_bias"]
    copies = {"W_enc": state["encoder.weight"].T, "W_dec": state["decoder.weight"].T, "b_dec": centre}
    copies.update({"b_enc": state["encoder.bias"]} if layout == "standard" else
                  {"b_gate": state["gate_bias"], "r_mag": state["r_mag"], "b_mag": state["mag_bias"]})
    with torch.no_grad():
        for name, value in copies.items():
            getattr(sae, name).copy_(value)
        x = centre + torch.randn(64, d_in, generator=torch.Generator().manual_seed(0))  # around the centre
        features, reconstruction = _theirs(layout, state, x)
        ours = sae.encode(x)
        if not (torch.allclose(ours, features, atol=1e-5) and torch.allclose(sae.decode(ours), reconstruction, atol=1e-4)):
            raise BenchError(f"the converted SAE does not compute the {layout} AutoEncoder's features; nothing was "
                             f"written (a bug in the conversion: please report it)")
    return sae


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ae", type=Path, required=True, help="the dictionary_learning ae.pt")
    parser.add_argument("--hook", required=True, help="the TransformerLens hook it reads, e.g. blocks.5.hook_resid_post")
    parser.add_argument("--out", type=Path, required=True, help="a new folder for the SAELens SAE")
    args = parser.parse_args(argv)

    def body():
        check_new(args.out)
        layout, state = read_dictionary(args.ae)
        sae = to_saelens(state, args.hook, layout)
        write_new_folder(args.out, lambda folder: sae.save_model(str(folder)))
        print(f"wrote {args.out}: a SAELens {type(sae).__name__}, {sae.cfg.d_sae} latents over {args.hook} "
              f"({sae.cfg.d_in} wide); use it with MODEL=<model>+sae:{args.out} or MOEXBENCH_SAE_PATH={args.out}")

    return run_command(body, on_interrupt=NOTHING_WRITTEN)


if __name__ == "__main__":
    sys.exit(main())
