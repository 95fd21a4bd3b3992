"""A settings class's refusal, said in the environment's words: one line naming each
variable a person set (derived from the class: its env_prefix and validation aliases),
the value (never a secret's) and what is allowed, e.g.
`SAGA_BROKER=redpanda: must be one of embedded, kafka`. Pure: reads os.environ only to
name the alias that was actually set."""

from __future__ import annotations

import os
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any

import annotated_types
from pydantic import AliasChoices, SecretBytes, SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

# Named like this, a value is a secret even where its type is a plain str.
_SECRET_WORDS = ("secret", "password", "token", "private", "credential")


class SettingsError(Exception):
    """The environment holds a value the settings refuse; str() is the one line to print."""


def settings_error(exc: ValidationError, cls: type[BaseSettings],
                   environ: Mapping[str, str] | None = None) -> SettingsError:
    """One SettingsError line for every problem `exc` reports about `cls`."""
    environ = os.environ if environ is None else environ
    by_key = _fields_by_key(cls)
    problems = []
    for error in exc.errors():
        key = str(error["loc"][0]) if error["loc"] else ""
        found = by_key.get(key.lower())
        if found is None:  # not a field of ours (a model-level validator): pydantic's words
            problems.append(_should(error["msg"]))
            continue
        name, info = found
        variable = env_name(cls, name, environ)
        shown = " (value hidden)" if _secret(name, info) else f"={error.get('input', '')}"
        rule = allowed(info) or _should(error["msg"])
        problems.append(f"{variable}{shown}: {rule}")
    return SettingsError("; ".join(problems))


def env_name(cls: type[BaseSettings], field: str, environ: Mapping[str, str] | None = None
             ) -> str:
    """The environment variable that sets `field`: of its aliases, the one that is set (else
    the first); without aliases, the class's env_prefix and the field's name."""
    environ = os.environ if environ is None else environ
    choices = _aliases(cls.model_fields[field])
    if not choices:
        return f"{cls.model_config.get('env_prefix', '')}{field}".upper()
    present = {key.upper() for key in environ}
    return next((c for c in choices if c.upper() in present), choices[0])


def allowed(info: FieldInfo) -> str | None:
    """What a field accepts, from its type and constraints; None if nothing clear to say."""
    kind = _unwrap_optional(info.annotation)
    if typing.get_origin(kind) is typing.Literal:
        return "must be one of " + ", ".join(str(v) for v in typing.get_args(kind))
    if kind is bool:
        return "must be true or false"
    if kind is int:
        return "must be a whole number" + _bounds(info.metadata)
    if kind is float:
        return "must be a number" + _bounds(info.metadata)
    return _lengths(info.metadata)


def _lengths(metadata: Iterable[Any]) -> str | None:
    """E.g. 'must be at least 32 characters long', 'must not be empty'; or None."""
    lengths = [f"at least {m.min_length}" for m in metadata
               if isinstance(m, annotated_types.MinLen) and m.min_length > 1] + [
               f"at most {m.max_length}" for m in metadata
               if isinstance(m, annotated_types.MaxLen)]
    if lengths:
        return f"must be {' and '.join(lengths)} characters long"
    if any(isinstance(m, annotated_types.MinLen) for m in metadata):
        return "must not be empty"
    return None


def _bounds(metadata: Iterable[Any]) -> str:
    """What to append: ' from 1 to 65535', ', at least 1', ', greater than 0' or ''."""
    low = high = None
    for item in metadata:
        if isinstance(item, annotated_types.Ge):
            low = f"at least {item.ge}"
        elif isinstance(item, annotated_types.Gt):
            low = f"greater than {item.gt}"
        elif isinstance(item, annotated_types.Le):
            high = f"at most {item.le}"
        elif isinstance(item, annotated_types.Lt):
            high = f"less than {item.lt}"
    if low and high and low.startswith("at least") and high.startswith("at most"):
        return f" from {low.removeprefix('at least ')} to {high.removeprefix('at most ')}"
    return "".join(f", {b}" for b in (low, high) if b)


def _unwrap_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _secret(name: str, info: FieldInfo) -> bool:
    kind = _unwrap_optional(info.annotation)
    return kind in (SecretStr, SecretBytes) or any(w in name.lower() for w in _SECRET_WORDS)


def _aliases(info: FieldInfo) -> list[str]:
    alias = info.validation_alias
    if isinstance(alias, str):
        return [alias]
    if isinstance(alias, AliasChoices):
        return [c for c in alias.choices if isinstance(c, str)]
    return []


def _fields_by_key(cls: type[BaseSettings]) -> dict[str, tuple[str, FieldInfo]]:
    """Field name and every alias, lowercased (an error's loc is the one that was read)."""
    keys: dict[str, tuple[str, FieldInfo]] = {}
    for name, info in cls.model_fields.items():
        for key in (name, *_aliases(info)):
            keys[key.lower()] = (name, info)
    return keys


def _should(message: str) -> str:
    return message.replace("Input should be", "must be").replace("Value should", "must")
