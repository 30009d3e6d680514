"""A built-in dictionary model pointed at your own dictionary scores another experiment.

`MODEL=dense+sae` (or any SAE model) with MOEXBENCH_SAE_PATH=<SAELens folder> or
MOEXBENCH_SAE_RELEASE=<release>/<sae id>, and `MODEL=dense+transcoder` with
MOEXBENCH_TRANSCODER_PATH=<folder>, read your dictionary instead of ours. Their results therefore go to
a results folder of their own, `dictionary.<folder name>-<6 hex of its path>/` (a release:
`dictionary.<release>_<sae id>/`), with its own summary: never over the committed `dense+sae.json`,
never averaged with its seeds, never a row of the committed summary. The random-init floor is a
dictionary trained here with the preset's settings, in your SAE's architecture when its cfg.json
names one this harness trains (a release: the architecture of the model asked for). The result
records the variable and its value; the SAEBench export reads a result only under the same one.
`make grid`, `make regress` and the SAE sweep refuse to run with these variables set.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from core.errors import BenchError

VARIABLES = {"sae": ("MOEXBENCH_SAE_PATH", "MOEXBENCH_SAE_RELEASE"), "transcoder": ("MOEXBENCH_TRANSCODER_PATH",)}


def own_dictionary(dictionary: str | None) -> dict | None:
    """{"variable", "value"} of the variable naming your dictionary of this kind, or None. A folder is
    recorded as its absolute path, so `./my-sae` and `/home/me/my-sae` are one dictionary."""
    for variable in VARIABLES.get(dictionary, ()):
        if value := os.environ.get(variable):
            return normalised({"variable": variable, "value": value})
    return None


def normalised(own: dict) -> dict:
    """`own` with a folder written as its absolute path (results written before paths were resolved
    recorded them as typed; resolved from here, where commands run)."""
    if own["variable"].endswith("_PATH"):
        return {**own, "value": str(Path(own["value"]).expanduser().resolve())}
    return own


def any_set() -> str | None:
    """The first of the variables that is set, or None."""
    return next((v for vs in VARIABLES.values() for v in vs if os.environ.get(v)), None)


def with_own_dictionary(cls, requested: str):
    """`cls` itself, or, when its variable is set, a subclass that knows your dictionary. `requested`
    is the model name as given: one naming an architecture (dense+sae:gated) must match the folder's."""
    own = own_dictionary(getattr(cls, "dictionary", None))
    if own is None:
        return cls
    _check_value(own)
    attrs = {"own_dictionary": own, "requested_name": requested}
    if own["variable"] == "MOEXBENCH_SAE_PATH":
        architecture = _architecture(Path(own["value"]).expanduser().resolve())
        if architecture is not None:
            if ":" in requested and architecture != cls.architecture:
                raise BenchError(f"MODEL={requested} asks for a {cls.architecture} SAE, but {own['value']} holds a "
                                 f"{architecture} one; use MODEL={requested.split(':')[0]}")
            attrs["architecture"] = architecture  # the floor SAE is trained in it
    return type(f"{cls.__name__}OwnDictionary", (cls,), attrs)


def _check_value(own: dict) -> None:
    """The variable's value as far as it can be read without loading anything, checked when the model
    is named: a misspelt folder must not cost the base model's training first."""
    variable, value = own["variable"], own["value"]
    if variable.endswith("_PATH"):
        folder = Path(value)
        if not (folder / "cfg.json").is_file():
            what = "no such folder" if not folder.exists() else "not a SAELens folder (no cfg.json)"
            raise BenchError(f"{variable}={value}: {what}; point it at a folder saved with SAELens's "
                             f"save_model(folder), or unset it")
    else:
        release, _, sae_id = value.partition("/")
        if not release or not sae_id:
            raise BenchError(f"{variable}={value!r}: write it as <release>/<sae id>, as SAELens names its "
                             f"pretrained SAEs, or unset it")
        _check_release(variable, release, sae_id)


def _check_release(variable: str, release: str, sae_id: str) -> None:
    """A release and SAE id that SAELens's own directory of pretrained SAEs (shipped with it, read
    offline) lists: a misspelt one is named before the hub is asked and before any work."""
    import difflib

    from sae_lens.loading.pretrained_saes_directory import get_pretrained_saes_directory

    directory = get_pretrained_saes_directory()
    value = f"{variable}={release}/{sae_id}"
    if release not in directory:
        close = difflib.get_close_matches(release, list(directory), n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        # SAELens also takes a HuggingFace repository as the release; its name holds a "/", which this
        # variable's <release>/<sae id> cannot tell from the id's
        raise BenchError(f"{value}: SAELens's directory of pretrained SAEs has no release {release!r}; {hint}"
                         f"name a release it lists (a HuggingFace repository is not taken here: load it with "
                         f"SAELens, save it with save_model(folder) and use MOEXBENCH_SAE_PATH), or unset it")
    ids = list(directory[release].saes_map)
    if sae_id not in ids:
        close = difflib.get_close_matches(sae_id, ids, n=3) or ids[:3]
        raise BenchError(f"{value}: release {release} has no SAE {sae_id!r} ({len(ids)} ids, e.g. "
                         f"{', '.join(close)}); name one of them, or unset it")


def variant_part(adapter_cls) -> str | None:
    """The results sub-folder of a model reading your dictionary, or None."""
    from adapters.external import _named, _plain

    own = getattr(adapter_cls, "own_dictionary", None)
    if own is None:
        return None
    if own["variable"].endswith("_PATH"):
        folder = Path(own["value"]).expanduser().resolve()
        return f"dictionary.{_named(folder.name, folder)}"
    return f"dictionary.{_plain(own['value'].replace('/', '_'))}"


def _architecture(folder: Path) -> str | None:
    """The SAE architecture its cfg.json names (SAELens's default, standard, when it names none; one
    this harness does not train: topk), or None when there is no readable cfg.json: loading the SAE
    then says what is wrong with the folder."""
    from adapters.sae import ARCHITECTURES

    try:
        cfg = json.loads((folder / "cfg.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(cfg, dict):
        return None
    name = cfg.get("architecture", "standard")
    return name if name in ARCHITECTURES else "topk"


def refuse_own_dictionary(what: str) -> None:
    """One line instead of running `what`, which compares with or writes the committed numbers."""
    if variable := any_set():
        raise BenchError(f"{what} scores the committed dictionaries only, and {variable} is set here; "
                         f"unset it, or score your dictionary with `make bench`")
