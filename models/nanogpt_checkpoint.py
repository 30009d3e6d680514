"""A nanoGPT checkpoint (`ckpt.pt`: a `model` state dict and its `model_args`), the format of
Karvonen's chess GPTs, as a TransformerLens `HookedTransformer`.

The file is read with `torch.load(weights_only=True)`, so it can hold tensors and plain values
only, never code; the weights go through TransformerLens's nanoGPT conversion. A `meta.pkl` beside
it is checked, never unpickled: its opcodes are read as data (`pickletools`).
"""

from __future__ import annotations

import pickletools
import warnings
from pathlib import Path

import torch

from core.errors import BenchError
from models.external_paths import path_problem

MODEL_ARGS = ("n_layer", "n_head", "n_embd", "block_size", "vocab_size")
_LAYER_KEYS = ("ln_1.weight", "attn.c_attn.weight", "attn.c_proj.weight", "ln_2.weight", "mlp.c_fc.weight",
               "mlp.c_proj.weight")


def read_checkpoint(path: Path) -> tuple[dict, dict]:
    """(state dict, model_args) of a nanoGPT ckpt.pt, checked for the keys the conversion reads."""
    path = Path(path)
    if problem := path_problem("nanogpt", path):
        raise BenchError(problem)
    try:
        with warnings.catch_warnings():  # torch warns about a plain pickle's protocol before refusing it below
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - text, an empty file, a pickle of code: each raises its own kind
        # torch's own message is about its weights_only default, not about this file: name the kind only
        raise BenchError(f"nanogpt:{path}: not a checkpoint torch.load(weights_only=True) can read "
                         f"({type(e).__name__}); give the ckpt.pt that nanoGPT's train.py saved") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt or "model_args" not in ckpt:
        found = sorted(map(str, ckpt))[:8] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise BenchError(f"nanogpt:{path}: expected a dict with 'model' and 'model_args' (nanoGPT's ckpt.pt), "
                         f"found {found}; give the ckpt.pt that nanoGPT's train.py saved")
    args, state = ckpt["model_args"], ckpt["model"]
    if not isinstance(args, dict) or not isinstance(state, dict):
        raise BenchError(f"nanogpt:{path}: 'model' and 'model_args' must be dicts (nanoGPT's ckpt.pt)")
    state = _strip_compile_prefix(state)
    missing = [k for k in MODEL_ARGS if k not in args]
    if missing:
        raise BenchError(f"nanogpt:{path}: model_args lacks {', '.join(missing)}")
    bad = [k for k in MODEL_ARGS if not isinstance(args[k], int) or args[k] <= 0]
    if bad:
        raise BenchError(f"nanogpt:{path}: model_args {', '.join(bad)} must be positive integers")
    if args["n_embd"] % args["n_head"]:
        raise BenchError(f"nanogpt:{path}: n_embd {args['n_embd']} is not a multiple of n_head {args['n_head']}, so "
                         f"the heads cannot split it; give the model_args the weights were trained with")
    wanted = ["transformer.wte.weight", "transformer.wpe.weight", "transformer.ln_f.weight", "lm_head.weight"]
    wanted += [f"transformer.h.{i}.{k}" for i in range(args["n_layer"]) for k in _LAYER_KEYS]
    absent = [k for k in wanted if k not in state]
    if absent:
        raise BenchError(f"nanogpt:{path}: the state dict lacks {len(absent)} key(s) nanoGPT writes for "
                         f"n_layer={args['n_layer']}, first {absent[0]!r}")
    not_tensors = [k for k in wanted if not isinstance(state[k], torch.Tensor)]
    if not_tensors:
        raise BenchError(f"nanogpt:{path}: {not_tensors[0]!r} in the state dict is a "
                         f"{type(state[not_tensors[0]]).__name__}, not a tensor; give the ckpt.pt that nanoGPT's "
                         f"train.py saved")
    beyond = sorted({k.split(".")[2] for k in state if k.startswith("transformer.h.")
                     and k.split(".")[2].isdigit() and int(k.split(".")[2]) >= args["n_layer"]}, key=int)
    if beyond:
        raise BenchError(f"nanogpt:{path}: the state dict holds block(s) {', '.join(beyond)} beyond model_args "
                         f"n_layer={args['n_layer']}; set n_layer to the number of blocks saved")
    expected = _expected_shapes(args)
    for key in [*wanted, *(k for k in expected if k in state and k not in wanted)]:
        shape = tuple(state[key].shape) if isinstance(state[key], torch.Tensor) else None
        if shape != expected[key]:
            raise BenchError(f"nanogpt:{path}: {key} is {shape}, while model_args (n_embd {args['n_embd']}, "
                             f"vocab_size {args['vocab_size']}, block_size {args['block_size']}) give "
                             f"{expected[key]}; give the model_args the weights were trained with")
    return state, args


def _expected_shapes(args: dict) -> dict[str, tuple[int, ...]]:
    """The shape of every weight and bias nanoGPT's GPT saves for these model_args (biases only where
    its `bias=True`; the causal-mask buffer `attn.bias` of older versions is left to the conversion)."""
    e, v, ctx = args["n_embd"], args["vocab_size"], args["block_size"]
    shapes = {"transformer.wte.weight": (v, e), "transformer.wpe.weight": (ctx, e), "transformer.ln_f.weight": (e,),
              "transformer.ln_f.bias": (e,), "lm_head.weight": (v, e)}
    per_block = {"ln_1.weight": (e,), "ln_1.bias": (e,), "attn.c_attn.weight": (3 * e, e), "attn.c_attn.bias": (3 * e,),
                 "attn.c_proj.weight": (e, e), "attn.c_proj.bias": (e,), "ln_2.weight": (e,), "ln_2.bias": (e,),
                 "mlp.c_fc.weight": (4 * e, e), "mlp.c_fc.bias": (4 * e,), "mlp.c_proj.weight": (e, 4 * e),
                 "mlp.c_proj.bias": (e,)}
    for i in range(args["n_layer"]):
        shapes.update({f"transformer.h.{i}.{k}": shape for k, shape in per_block.items()})
    return shapes


def _strip_compile_prefix(state: dict) -> dict:
    """torch.compile'd models save their keys under `_orig_mod.`."""
    return {k.removeprefix("_orig_mod."): v for k, v in state.items()}


def tl_config(args: dict, device: str = "cpu"):
    from transformer_lens import HookedTransformerConfig

    d_model, n_heads = args["n_embd"], args["n_head"]
    # nanoGPT: exact GELU (nn.GELU()), LayerNorm eps 1e-5, attention scaled by 1/sqrt(d_head).
    return HookedTransformerConfig(
        n_layers=args["n_layer"], d_model=d_model, n_heads=n_heads, d_head=d_model // n_heads, d_mlp=4 * d_model,
        n_ctx=args["block_size"], d_vocab=args["vocab_size"], act_fn="gelu", eps=1e-5, normalization_type="LN",
        positional_embedding_type="standard", default_prepend_bos=False, device=device)


def load_nanogpt(path: Path, device: str = "cpu"):
    """The checkpoint as a float32 HookedTransformer in eval mode."""
    from transformer_lens import HookedTransformer
    from transformer_lens.pretrained.weight_conversions.nanogpt import convert_nanogpt_weights

    state, args = read_checkpoint(path)
    cfg = tl_config(args, device)
    state = {k: v.float() for k, v in state.items()}  # the conversion pops keys: give it our own copy
    model = HookedTransformer(cfg, move_to_device=False)
    with torch.no_grad():
        model.load_and_process_state_dict(convert_nanogpt_weights(state, cfg), fold_ln=False,
                                          center_writing_weights=False, center_unembed=False, fold_value_biases=False)
    # HookedTransformer.to announces itself on stdout; a CPU model is already where it belongs.
    return (model if device == "cpu" else model.to(device)).eval()


_CONSTANTS = {"BININT", "BININT1", "BININT2", "INT", "LONG", "LONG1", "BINFLOAT", "FLOAT", "SHORT_BINUNICODE",
              "BINUNICODE", "BINUNICODE8", "UNICODE"}
_SINGLETONS = {"NEWTRUE": True, "NEWFALSE": False, "NONE": None}


def read_plain_pickle(path: Path):
    """A pickle that holds only dicts of numbers and strings, rebuilt from its opcodes: nothing is
    imported or called, and any opcode that would build another object is refused."""
    try:
        ops = list(pickletools.genops(Path(path).read_bytes()))
    except (ValueError, OSError) as e:
        raise BenchError(f"{path}: not a readable pickle ({e})") from None
    try:
        return _rebuild(ops, path)
    except (IndexError, KeyError, TypeError, AttributeError, ValueError) as e:
        raise BenchError(f"{path}: not a pickle of a plain dict ({type(e).__name__} while reading it)") from None


def _rebuild(ops: list, path: Path):
    stack, marks, memo = [], [], {}
    for op, arg, _ in ops:
        name = op.name
        if name in ("PROTO", "FRAME"):
            continue
        if name == "STOP":
            return stack.pop()
        if name in _CONSTANTS:
            stack.append(arg)
        elif name in _SINGLETONS:
            stack.append(_SINGLETONS[name])
        elif name == "EMPTY_DICT":
            stack.append({})
        elif name == "MARK":
            marks.append(len(stack))
        elif name in ("BINPUT", "LONG_BINPUT", "PUT", "MEMOIZE"):
            memo[len(memo) if name == "MEMOIZE" else arg] = stack[-1]
        elif name in ("BINGET", "LONG_BINGET", "GET"):
            stack.append(memo[arg])
        elif name == "SETITEM":
            value, key = stack.pop(), stack.pop()
            stack[-1][key] = value
        elif name in ("SETITEMS", "DICT"):
            start = marks.pop()
            items, stack[start:] = stack[start:], []
            target = stack[-1] if name == "SETITEMS" else {}
            target.update(zip(items[::2], items[1::2]))
            if name == "DICT":
                stack.append(target)
        else:
            raise BenchError(f"{path}: the pickle builds objects ({name}); a nanoGPT meta.pkl holds only a dict of "
                             f"strings and integers")
    raise BenchError(f"{path}: the pickle ends without STOP")


def meta_vocabulary(path: Path) -> dict[str, int]:
    """The `stoi` mapping of a nanoGPT meta.pkl ({'vocab_size', 'itos', 'stoi'}), never unpickled."""
    meta = read_plain_pickle(path)
    if not isinstance(meta, dict) or not isinstance(meta.get("stoi"), dict):
        raise BenchError(f"{path}: no 'stoi' mapping; this is not a nanoGPT character meta.pkl")
    return meta["stoi"]


def check_meta_vocabulary(path: Path, vocabulary: str) -> None:
    """A meta.pkl whose characters or ids differ from `vocabulary` (id = position) is refused."""
    stoi = meta_vocabulary(path)
    if stoi == {c: i for i, c in enumerate(vocabulary)}:
        return
    itos = {i: c for c, i in stoi.items()}
    ids = sorted(set(range(len(vocabulary))) | {i for i in itos if isinstance(i, int)})
    chess = dict(enumerate(vocabulary))
    differ = [i for i in ids if itos.get(i) != chess.get(i)]

    def said(char) -> str:
        return "no character" if char is None else repr(char)

    shown = "; ".join(f"id {i} is {said(itos.get(i))} there, {said(chess.get(i))} in chess" for i in differ[:3])
    if not differ:  # every id matches, so some character shares an id with another, or an id is no integer
        odd = sorted({repr(c) for c, i in stoi.items() if chess.get(i) != c})
        differ, shown = odd, f"characters {', '.join(odd[:3])} have ids the chess characters hold"
    raise BenchError(f"{path}: its vocabulary differs from the chess one ({vocabulary!r}) at {len(differ)} of "
                     f"{len(ids)} ids ({shown}); the model reads other token ids")
