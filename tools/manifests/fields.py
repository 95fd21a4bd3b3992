"""Field access for manifest parsing: every failure becomes a ManifestError that names the
file, the object and the field path."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

T = TypeVar("T")

_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


class ManifestError(ValueError):
    """A manifest the local runtime refuses to run; the message says where and why."""


class At:
    """A position in one manifest object, for error messages."""

    def __init__(self, path: Path, kind: str, name: str) -> None:
        self.prefix = f"{path}: {kind} {name!r}"

    def fail(self, field: str, problem: str) -> ManifestError:
        return ManifestError(f"{self.prefix}: {field}: {problem}")

    def mapping(self, value: Any, field: str, allowed: set[str] | None = None) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(field, f"expected a mapping, got {type(value).__name__}")
        unknown = sorted(set(value) - allowed) if allowed is not None else []
        if unknown:
            raise self.fail(field, f"unknown field(s) {', '.join(unknown)} (the CRD has: "
                                   f"{', '.join(sorted(allowed or ()))})")
        return value

    def string(self, mapping: Mapping[str, Any], key: str, field: str, *,
               required: bool = False) -> str | None:
        value = mapping.get(key)
        if value is None:
            if required:
                raise self.fail(f"{field}.{key}", "required")
            return None
        if not isinstance(value, str) or (required and not value):
            raise self.fail(f"{field}.{key}", f"expected a non-empty string, got {value!r}")
        return value

    def convert(self, value: str, field: str, parse: Callable[[str], T]) -> T:
        try:
            return parse(value)
        except (ValueError, TypeError) as exc:
            raise self.fail(field, str(exc)) from None


def object_name(doc: Mapping[str, Any], path: Path, kind: str) -> str:
    metadata = doc.get("metadata") or {}
    name = metadata.get("name") if isinstance(metadata, dict) else None
    if not isinstance(name, str) or not _DNS_LABEL.match(name):
        raise ManifestError(f"{path}: {kind}: metadata.name must be a DNS label, got {name!r}")
    return name


def int_at_least(at: At, value: Any, field: str, minimum: int) -> int:
    try:
        number = int(value, 10) if isinstance(value, str) else value
    except ValueError:
        number = None
    if not isinstance(number, int) or isinstance(number, bool) or number < minimum:
        raise at.fail(field, f"expected an integer >= {minimum}, got {value!r}")
    return number


def choice(at: At, value: Any, field: str, options: tuple[str, ...], default: str) -> str:
    if value is None:
        return default
    if value not in options:
        raise at.fail(field, f"{value!r} is not one of {', '.join(options)}")
    return str(value)



def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not an IANA time zone (e.g. Europe/Berlin)") from None


def b64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        raise ValueError("not valid base64") from None
