"""A built-in dictionary model pointed at your own dictionary is another model.

`MODEL=dense+sae` (or any SAE model) with MOEXBENCH_SAE_PATH=<SAELens folder> or
MOEXBENCH_SAE_RELEASE=<release>, and `MODEL=dense+transcoder` with MOEXBENCH_TRANSCODER_PATH=<folder>,
read your dictionary instead of ours. Their results are therefore written under a name of their own,
`<model>-<folder name>-<6 hex of its path>` (a release: `<model>-<release>`), never over the committed
`dense+sae.json` and never averaged with its seeds. The random-init floor is a dictionary of your SAE's
architecture (read from its cfg.json) trained here with the preset's settings. The result records the
variable and its value, so the SAEBench export can ask for the same dictionary again; `make grid`,
`make regress` and the SAE sweep refuse to run with these variables set.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from core.errors import BenchError

VARIABLES = {"sae": ("MOEXBENCH_SAE_PATH", "MOEXBENCH_SAE_RELEASE"), "transcoder": ("MOEXBENCH_TRANSCODER_PATH",)}


def own_dictionary(dictionary: str | None) -> tuple[str, str] | None:
    """(variable, value) of the variable naming your dictionary of this kind, or None."""
    for variable in VARIABLES.get(dictionary, ()):
        if value := os.environ.get(variable):
            return variable, value
    return None


def with_own_dictionary(cls, requested: str):
    """`cls` itself, or a subclass named after your dictionary when its variable is set. `requested`
    is the model name as given: one naming an architecture (dense+sae:gated) must match the folder's."""
    from adapters.external import _named, _plain

    own = own_dictionary(getattr(cls, "dictionary", None))
    if own is None:
        return cls
    variable, value = own
    attrs = {"own_dictionary": {"variable": variable, "value": value}, "requested_name": requested}
    if variable.endswith("_PATH"):
        folder = Path(value).expanduser().resolve()
        attrs["name"] = f"{cls.name}-{_named(folder.name, folder)}"
        architecture = _architecture(folder) if variable == "MOEXBENCH_SAE_PATH" else None
        if architecture is not None:
            if ":" in requested and architecture != cls.architecture:
                raise BenchError(f"MODEL={requested} asks for a {cls.architecture} SAE, but {value} holds a "
                                 f"{architecture} one; use MODEL={requested.split(':')[0]}")
            attrs["architecture"] = architecture  # the floor SAE is trained in it
    else:
        attrs["name"] = f"{cls.name}-{_plain(value)}"
    return type(f"{cls.__name__}OwnDictionary", (cls,), attrs)


def _architecture(folder: Path) -> str | None:
    """The SAE architecture its cfg.json names (one this harness does not train: topk), or None when
    there is no readable cfg.json; loading the SAE then says what is wrong with the folder."""
    from adapters.sae import ARCHITECTURES

    try:
        cfg = json.loads((folder / "cfg.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(cfg, dict):
        return None
    name = cfg.get("architecture", "topk")
    return name if name in ARCHITECTURES else "topk"


def refuse_own_dictionary(what: str) -> None:
    """One line instead of running `what`, which compares with or writes the committed numbers."""
    for variables in VARIABLES.values():
        for variable in variables:
            if os.environ.get(variable):
                raise BenchError(f"{what} scores the committed dictionaries only, and {variable} is set here; "
                                 f"unset it, or score your dictionary with `make bench`")
