"""A GPT-2-family checkpoint saved by `transformers` (`config.json` + weights) as a TransformerLens
`HookedTransformer`, from local files only.

The TransformerLens config is built here from the folder's `config.json` (TransformerLens's own
`get_pretrained_model_config` would ask the hub); the weights go through TransformerLens's GPT-2
conversion unchanged, and nothing is folded or centred, so the MLP neurons (`hook_post`) are the
checkpoint's own and the logits equal `transformers`' forward.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from core.errors import BenchError
from models.external_paths import path_problem

# What save_pretrained writes: one file, or shards listed by an index beside them (a large model, or a
# small max_shard_size). In the order transformers looks for them: safetensors first, each whole or sharded.
WEIGHT_SOURCES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                  "pytorch_model.bin.index.json")
# config.json fields that change the computation in ways this loader does not reproduce.
_UNSUPPORTED = {"scale_attn_by_inverse_layer_idx": True, "reorder_and_upcast_attn": True, "add_cross_attention": True,
                "scale_attn_weights": False}


def read_gpt2_config(folder: Path) -> dict:
    """The folder's config.json, checked to describe a GPT-2 model this loader reproduces exactly."""
    folder = Path(folder)
    path = folder / "config.json"
    if problem := path_problem("hf", folder):
        raise BenchError(problem)
    if not path.is_file():
        raise BenchError(f"hf:{folder}: no config.json; this is not a checkpoint saved by transformers' save_pretrained")
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BenchError(f"{path}: not valid JSON ({e}); re-save the model with save_pretrained") from None
    if config.get("model_type") != "gpt2":
        raise BenchError(f"{path}: model_type is {config.get('model_type')!r}, not 'gpt2'; only GPT-2-family "
                         f"checkpoints load here")
    for key, bad in _UNSUPPORTED.items():
        if config.get(key) == bad:
            raise BenchError(f"{path}: {key}={bad} is not supported (the TransformerLens conversion would change the "
                             f"model's outputs)")
    missing = [k for k in ("n_embd", "n_head", "n_layer", "n_positions", "vocab_size") if k not in config]
    if missing:
        raise BenchError(f"{path}: lacks {', '.join(missing)}; not a complete GPT-2 config")
    bad = [k for k in ("n_embd", "n_head", "n_layer", "n_positions", "vocab_size")
           if not isinstance(config[k], int) or isinstance(config[k], bool) or config[k] <= 0]
    if bad:
        raise BenchError(f"{path}: {', '.join(bad)} must be positive integers; give the config.json the weights were "
                         f"saved with")
    if config["n_embd"] % config["n_head"]:
        raise BenchError(f"{path}: n_embd {config['n_embd']} is not a multiple of n_head {config['n_head']}, so the "
                         f"heads cannot split it; give the config.json the weights were saved with")
    weight_files(folder)  # refuses a folder without them
    return config


def weight_files(folder: Path) -> list[Path]:
    """The weight files transformers loads from `folder`: the first of WEIGHT_SOURCES there, a single
    file or the shards its index lists."""
    for name in WEIGHT_SOURCES:
        index = folder / name
        if not index.is_file():
            continue
        if not name.endswith(".index.json"):
            return [index]  # the weights themselves, not an index
        try:
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError) as e:
            raise BenchError(f"{index}: not an index of shards ({type(e).__name__}: {e}); save the model again "
                             f"with save_pretrained") from None
        absent = [shard for shard in shards if not (folder / shard).is_file()]
        if absent or not shards:
            raise BenchError(f"{index} lists {len(shards)} shard(s) and {len(absent)} are not in the folder "
                             f"({', '.join(absent[:3]) or 'none listed'}); copy every shard beside it")
        return [folder / shard for shard in shards]
    raise BenchError(f"hf:{folder}: no weights ({', '.join(WEIGHT_SOURCES)}) beside config.json")


def tl_config(config: dict, device: str = "cpu"):
    """TransformerLens's config for the GPT-2 described by a transformers config.json."""
    from transformer_lens import HookedTransformerConfig

    d_model, n_heads = config["n_embd"], config["n_head"]
    return HookedTransformerConfig(
        n_layers=config["n_layer"], d_model=d_model, n_heads=n_heads, d_head=d_model // n_heads,
        d_mlp=config.get("n_inner") or 4 * d_model, n_ctx=config["n_positions"], d_vocab=config["vocab_size"],
        act_fn=config.get("activation_function", "gelu_new"), eps=config.get("layer_norm_epsilon", 1e-5),
        normalization_type="LN", positional_embedding_type="standard", original_architecture="GPT2LMHeadModel",
        default_prepend_bos=False, device=device)


def load_hf_gpt2(folder: Path, device: str = "cpu"):
    """The checkpoint at `folder` as a HookedTransformer in eval mode (float32)."""
    from transformer_lens import HookedTransformer
    from transformer_lens.pretrained.weight_conversions.gpt2 import convert_gpt2_weights
    from transformers import GPT2LMHeadModel
    from transformers.utils import logging as hf_logging

    config = read_gpt2_config(folder)
    _check_weight_shapes(folder, config)
    hf_logging.disable_progress_bar()  # a per-tensor bar for a load that takes a second
    try:
        hf = GPT2LMHeadModel.from_pretrained(str(folder), local_files_only=True, dtype=torch.float32)
    except Exception as e:  # noqa: BLE001 - a damaged file raises its reader's own kind (safetensors, pickle)
        raise BenchError(f"hf:{folder}: transformers could not load it ({_one_line(e)}); give the folder "
                         f"save_pretrained wrote, with the config.json of those weights") from None
    cfg = tl_config(config, device)
    model = HookedTransformer(cfg, move_to_device=False)
    with torch.no_grad():
        model.load_and_process_state_dict(convert_gpt2_weights(hf, cfg), fold_ln=False, center_writing_weights=False,
                                          center_unembed=False, fold_value_biases=False)
    # HookedTransformer.to announces itself on stdout; a CPU model is already where it belongs.
    return (model if device == "cpu" else model.to(device)).eval()


def _check_weight_shapes(folder: Path, config: dict) -> None:
    """The safetensors weights' tensors (the one file or every shard) against the shapes config.json gives
    them, read from the files' headers only: transformers reports a mismatch in a log and raises with no
    tensor named. (pytorch_model.bin is left to transformers: reading its shapes means loading it.)"""
    from safetensors import safe_open

    files = weight_files(folder)
    if files[0].suffix != ".safetensors":
        return
    e, inner, v, ctx = config["n_embd"], config.get("n_inner") or 4 * config["n_embd"], config["vocab_size"], \
        config["n_positions"]
    expected = {"wte.weight": (v, e), "wpe.weight": (ctx, e), "ln_f.weight": (e,), "ln_f.bias": (e,)}
    per_block = {"ln_1.weight": (e,), "ln_1.bias": (e,), "attn.c_attn.weight": (e, 3 * e), "attn.c_attn.bias": (3 * e,),
                 "attn.c_proj.weight": (e, e), "attn.c_proj.bias": (e,), "ln_2.weight": (e,), "ln_2.bias": (e,),
                 "mlp.c_fc.weight": (e, inner), "mlp.c_fc.bias": (inner,), "mlp.c_proj.weight": (inner, e),
                 "mlp.c_proj.bias": (e,)}  # Conv1D stores (in, out)
    for i in range(config["n_layer"]):
        expected.update({f"h.{i}.{k}": shape for k, shape in per_block.items()})
    shapes = {}
    for path in files:
        try:
            with safe_open(str(path), framework="pt") as f:
                shapes.update({k: tuple(f.get_slice(k).get_shape()) for k in f.keys()})
        except Exception as err:  # noqa: BLE001 - safetensors raises its own kinds for a damaged header
            raise BenchError(f"hf:{folder}: {path.name} is not readable ({type(err).__name__}: "
                             f"{str(err).splitlines()[0] if str(err) else 'no message'}); save the model again with "
                             f"save_pretrained") from None
    where = files[0].name if len(files) == 1 else f"the {len(files)} shards"
    names = {k.removeprefix("transformer.") for k in shapes}
    beyond = sorted({int(k.split(".")[1]) for k in names if k.startswith("h.") and k.split(".")[1].isdigit()
                     and int(k.split(".")[1]) >= config["n_layer"]})
    missing = sorted(k for k in expected if k not in names)
    if beyond or missing:
        found = f"holds blocks beyond n_layer={config['n_layer']} ({', '.join(map(str, beyond))})" if beyond else \
            f"lacks {len(missing)} tensor(s) config.json asks for, first {missing[0]}"
        raise BenchError(f"hf:{folder}: {where} {found}; give the config.json saved with these weights "
                         f"(transformers would drop the extra or initialise the missing at random)")
    for key, shape in shapes.items():
        want = expected.get(key.removeprefix("transformer."))
        if want is not None and shape != want:
            raise BenchError(f"hf:{folder}: {key} is {shape} in {where}, while config.json (n_embd {e}, "
                             f"n_inner {inner}, vocab_size {v}, n_positions {ctx}) gives {want}; give the config.json "
                             f"saved with these weights")


def _one_line(error: Exception) -> str:
    """The line of a loader's message that names what differs: a size mismatch's report lists each
    tensor on a line of its own under a header that only says to look at it."""
    lines = [line.strip(" -") for line in str(error).splitlines() if line.strip(" -")]
    named = next((line for line in lines if "shape" in line), None)
    return f"{type(error).__name__}: {named or (lines[0] if lines else 'no message')}"
