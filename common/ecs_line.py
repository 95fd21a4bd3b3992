"""The text of one event line (common.logging.log_event) without a LogRecord: for one set of
dotted field names, the document EcsFormatter would write (nested, keys sorted at every
level) is rendered once as a template, and a line only encodes its values into it, with
the encoder EcsFormatter uses. A set of names the template cannot hold (an undotted,
excluded or duplicated name, a name that is also another's parent) has no template: the
caller takes the formatter's path, as for a dict value. tests/unit/test_ecs_line.py holds
both to the same bytes."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from functools import lru_cache
from operator import itemgetter
from typing import Any, NamedTuple

# The fields every event line has before the caller's: log_event's action and outcome, the
# handler's service.name. The values a line fills in are these, then the caller's.
BASE_FIELDS = ("event.action", "event.outcome", "service.name")
# Names EcsFormatter excludes or writes itself (common.logging._EXCLUDED, the head fields).
_OWN_ROOTS = frozenset({"log", "process", "ecs", "message", "@timestamp"})
_MAX_TEMPLATES = 256  # a process logs a few dozen sets of names; never grow without bound

encode_text: Callable[[str], str] = json.encoder.encode_basestring_ascii
# The C encoder JSONEncoder(sort_keys=True, separators=(",", ":"), default=repr) runs,
# made once (JSONEncoder.encode makes one per call): the same text for any value.
_ENCODE: Callable[[Any, int], Sequence[str]] = json.encoder.c_make_encoder(  # type: ignore[attr-defined]
    None, repr, encode_text, None, ":", ",", True, False, True)


class Template(NamedTuple):
    text: str  # the document after its opening brace, "%s" where each value goes
    pick: Callable[[Sequence[Any]], tuple[Any, ...]]  # the values in the text's order


_TEMPLATES: dict[tuple[str, ...], Template | None] = {}


def template(names: tuple[str, ...]) -> Template | None:
    """The template for a line with BASE_FIELDS and `names`, or None (the general path)."""
    try:
        return _TEMPLATES[names]
    except KeyError:
        found = _build(names)
        if len(_TEMPLATES) < _MAX_TEMPLATES:
            _TEMPLATES[names] = found
        return found


def fill(found: Template, values: Sequence[Any]) -> str:
    """The document's text after its opening brace, for BASE_FIELDS' values and then the
    caller's, in the order of the names the template was made for."""
    return found.text % tuple([encode_text(v) if type(v) is str else "".join(_ENCODE(v, 0))
                               for v in found.pick(values)])


def stamp(now: float) -> str:
    """@timestamp as EcsFormatter writes it for a record made at `now` (time.time())."""
    second = int(now)
    return f"{_whole_second(second)}.{int((now - second) * 1000):03d}Z"


@lru_cache(maxsize=4)
def _whole_second(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))


def _build(names: tuple[str, ...]) -> Template | None:
    tree: dict[str, Any] = {}
    for index, name in enumerate(BASE_FIELDS + names):
        parts = name.split(".")
        if (len(parts) < 2 or not all(parts) or parts[0] in _OWN_ROOTS or "%" in name
                or name.startswith("elasticapm_")):
            return None
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):  # "a.b" and "a.b.c"
                return None
        if parts[-1] in node:  # the same name twice, or "a.b.c" and "a.b"
            return None
        node[parts[-1]] = index
    order: list[int] = []
    text = _render(tree, order)
    return Template(text[1:], itemgetter(*order))


def _render(node: dict[str, Any], order: list[int]) -> str:
    items = []
    for key in sorted(node):
        child = node[key]
        if isinstance(child, dict):
            value = _render(child, order)
        else:
            order.append(child)
            value = "%s"
        items.append(f"{encode_text(key)}:{value}")
    return "{" + ",".join(items) + "}"
