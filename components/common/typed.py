"""Build frozen option dataclasses from plain dicts (TOML, JSON, custom_config).

Why here and not in ``pipeline/``: component code rebuilds its typed options
from the JSON ``custom_config`` it receives, and components never import the
pipeline package.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any, Dict, Mapping, TypeVar

from components.common.errors import ConfigError

T = TypeVar("T")


def from_dict(cls: type[T], data: Mapping[str, Any], path: str = "") -> T:
    """Returns ``cls(**data)`` after rejecting unknown keys and wrong types."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path or cls.__name__} must be a table of settings, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    where = f"{path}." if path else ""
    renamed = getattr(cls, "RENAMED", {})  # old setting name -> new, for a one-line hint
    for name in unknown:
        if name in renamed:
            raise ConfigError(f"setting {where}{name} is renamed: use {where}{renamed[name]}")
    if unknown:
        raise ConfigError(
            f"unknown setting {where}{unknown[0]}; known settings here: {', '.join(sorted(fields))}"
        )
    kwargs = {}
    for name, value in data.items():
        key = f"{path}.{name}" if path else name
        kwargs[name] = _coerce(hints[name], value, key)
    return cls(**kwargs)


def to_dict(obj: Any) -> dict[str, Any]:
    """The JSON-able dict that ``from_dict`` reads back (tuples become lists)."""
    return json_ready(dataclasses.asdict(obj))


def json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    return value


def _coerce(hint: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, key)
    if origin is typing.Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise ConfigError(f"{key} must be one of {', '.join(map(str, choices))}; got {value!r}")
        return value
    if origin is tuple:
        item_type = typing.get_args(hint)[0]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key} must be a list, got {value!r}")
        return tuple(_coerce(item_type, v, f"{key}[{i}]") for i, v in enumerate(value))
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key} must be a number, got {value!r}")
        if not math.isfinite(value):  # TOML reads nan and inf; no setting gives them a meaning
            raise ConfigError(f"{key} must be a finite number, got {value!r}; give a finite value")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} must be a whole number, got {value!r}")
        return value
    if hint in (bool, str):
        if not isinstance(value, hint):
            raise ConfigError(f"{key} must be a {hint.__name__}, got {value!r}")
        return value
    raise TypeError(f"unsupported setting type {hint!r} for {key}")


def flatten(config: Mapping[str, Any], prefix: str = "") -> Dict[str, Any]:
    """``{"clip": {"threshold": 0.5}}`` -> ``{"clip.threshold": 0.5}`` (the ``--set`` names); lists become tuples."""
    flat: Dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = tuple(value) if isinstance(value, list) else value
    return flat


def pick(choices: Mapping[str, T], name: str, setting: str) -> T:
    """``choices[name]``; an unknown name is a one-line error listing the known ones, never a fallback."""
    if name not in choices:
        raise ConfigError(f"unknown {setting} {name!r}; known: {', '.join(choices)}")
    return choices[name]
