"""The two duration syntaxes Knative manifests use, parsed to seconds.

Delivery fields (backoffDelay, timeout, retryAfterMax) are ISO-8601 durations ("PT0.3S",
"PT10S", "PT1M"); autoscaling annotations (scale-to-zero-pod-retention-period) are Go
durations ("1m30s", "500ms"). Both are refused with a ValueError naming what is wrong,
never guessed at.
"""

from __future__ import annotations

import re

# PnW or PnDTnHnMnS, any component may carry a fraction (Knative's parser allows it).
# Years and months are refused: they have no fixed length in seconds.
_ISO = re.compile(
    r"^P(?!$)"
    r"(?:(?P<weeks>\d+(?:[.,]\d+)?)W)?"
    r"(?:(?P<days>\d+(?:[.,]\d+)?)D)?"
    r"(?:T(?=\d)"
    r"(?:(?P<hours>\d+(?:[.,]\d+)?)H)?"
    r"(?:(?P<minutes>\d+(?:[.,]\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:[.,]\d+)?)S)?"
    r")?$"
)
_ISO_UNITS = {"weeks": 604_800.0, "days": 86_400.0, "hours": 3600.0, "minutes": 60.0,
              "seconds": 1.0}

_GO_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0,
             "m": 60.0, "h": 3600.0}


def parse_iso8601_duration(text: str) -> float:
    """Seconds in an ISO-8601 duration such as PT0.3S, PT10S, PT1M or P1DT2H."""
    value = text.strip().upper()
    match = _ISO.match(value)
    if match is None:
        if re.match(r"^P(\d+Y|.*\d+M.*T|\d+M$)", value):
            raise ValueError(f"{text!r}: years and months have no fixed length; use days or less")
        raise ValueError(
            f"{text!r} is not an ISO-8601 duration (expected e.g. PT0.3S, PT10S, PT1M)"
        )
    total = 0.0
    for unit, factor in _ISO_UNITS.items():
        part = match.group(unit)
        if part is not None:
            total += float(part.replace(",", ".")) * factor
    return total


def parse_go_duration(text: str) -> float:
    """Seconds in a Go duration such as 30s, 1m30s, 1h or 500ms ("0" alone is allowed)."""
    value = text.strip()
    if value == "0":
        return 0.0
    position, total = 0, 0.0
    for match in _GO_PART.finditer(value):
        if match.start() != position:
            break
        total += float(match.group(1)) * _GO_UNITS[match.group(2)]
        position = match.end()
    if position != len(value) or position == 0:
        raise ValueError(f"{text!r} is not a Go duration (expected e.g. 30s, 1m30s, 500ms)")
    return total
