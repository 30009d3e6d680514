"""Task configs are frozen dataclasses; `KEY=VALUE` overrides are checked against their fields."""

from __future__ import annotations

import dataclasses
import typing

from core.errors import BenchError


def _convert(value: str, kind, key: str):
    if kind is bool:
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise BenchError(f"{key}={value!r} is not a boolean; use true or false")
    try:
        return kind(value)
    except ValueError:
        raise BenchError(f"{key}={value!r} is not a valid {kind.__name__}; write {key}=<{kind.__name__}>") from None


def apply_overrides(config, overrides: list[str]):
    """Returns a copy of the dataclass `config` with each `KEY=VALUE` applied, converted to the
    field's type. Unknown keys and bad values raise one line naming the valid choices."""
    fields = {f.name: f for f in dataclasses.fields(config)}
    hints = typing.get_type_hints(type(config))
    changes = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise BenchError(f"argument {item!r} is not KEY=VALUE; write a setting as {key or '<key>'}=<value> "
                             f"(through make: ARGS=\"{key or '<key>'}=<value>\")")
        if key not in fields:
            raise BenchError(f"unknown setting {key!r} for {type(config).__name__}; "
                             f"choose from {', '.join(sorted(fields))}")
        changes[key] = _convert(value, hints[key], key)
    try:
        return dataclasses.replace(config, **changes)
    except ValueError as e:
        raise BenchError(str(e)) from None


def layer_from_end(config, depth: int):
    """`config` with a block counted from the start (`layer=3`) written as counted from the end
    (`layer=-1` on a 4-block model): the same features get one name, so one results folder and one
    recorded setting. A config without a `layer`, or a block the model lacks, is returned unchanged
    (bench/run_target.py names the missing block)."""
    layer = getattr(config, "layer", None)
    if not isinstance(layer, int) or not 0 <= layer < depth:
        return config
    return dataclasses.replace(config, layer=layer - depth)
