"""The Logstash pipeline parses (lscl, a Logstash config-language parser), and every field
it names is a contract field; its event.action comparisons name contract actions."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lscl.lang import LsclAttribute, LsclBlock, LsclConditions, LsclSelector
from lscl.parser import parse_lscl
from pydantic import BaseModel

from tests.contract import ELK
from tools.log_contract import ACTIONS, FIELDS, action_spec

PIPELINE = ELK / "logstash" / "pipeline" / "saga.conf"
OUTPUTS = sorted((ELK / "logstash" / "outputs").glob("*.conf"))
# [a][b] (optionally inside %{...}): a field reference in a plugin option's string.
_NAME = r"\[([A-Za-z@_][\w@.-]*)\]"
_REFERENCE = re.compile(rf"((?:{_NAME})+)")


def _parse(*paths: Path) -> list[Any]:
    return list(parse_lscl("\n".join(p.read_text(encoding="utf-8") for p in paths)))


def _walk(node: Any) -> Iterator[Any]:
    """Every node of lscl's AST (pydantic models, lists, tuples, dicts)."""
    yield node
    children: Any = ()
    if isinstance(node, BaseModel):
        children = [getattr(node, name) for name in type(node).model_fields]
    elif isinstance(node, list | tuple):
        children = node
    elif isinstance(node, dict):
        children = [*node.keys(), *node.values()]
    for child in children:
        yield from _walk(child)


def _referenced_fields(content: list[Any]) -> set[str]:
    fields = {".".join(n.names) for n in _walk(content) if isinstance(n, LsclSelector)}
    for node in _walk(content):
        if isinstance(node, str):
            for reference, *_ in _REFERENCE.findall(node):
                fields.add(".".join(re.findall(_NAME, reference)))
        if isinstance(node, LsclAttribute) and node.name == "source":
            fields.add(str(node.content))
    return fields


def _action_literals(content: list[Any]) -> tuple[set[str], set[str]]:
    """String values compared with [event][action] (==, in) and regexes matched on it."""
    equals, patterns = set(), set()
    for node in _walk(content):
        first = getattr(node, "first", None) or getattr(node, "value", None)
        if not (isinstance(first, LsclSelector) and first.names == ["event", "action"]):
            continue
        second = getattr(node, "second", None)
        if isinstance(second, str):
            equals.add(second)
        pattern = getattr(node, "pattern", None)
        if pattern is not None:
            patterns.add(pattern.pattern)
    return equals, patterns


@pytest.mark.parametrize("output", OUTPUTS, ids=[p.name for p in OUTPUTS])
def test_pipeline_and_each_output_parse(output: Path) -> None:
    content = _parse(PIPELINE, output)
    names = [block.name for block in content if isinstance(block, LsclBlock)]
    assert names == ["input", "filter", "output"]
    plugins = {n.name for n in _walk(content) if isinstance(n, LsclBlock)}
    assert {"beats", "json", "drop", "mutate", "elasticsearch"} <= plugins
    [es] = [n for n in _walk(content) if isinstance(n, LsclBlock) and n.name == "elasticsearch"]
    options = {a.name: a.content for a in es.content if isinstance(a, LsclAttribute)}
    assert options["data_stream"] == "true"
    assert options["data_stream_type"] == "logs" and options["data_stream_dataset"] == "saga"


def test_every_field_the_pipeline_names_is_in_the_contract() -> None:
    fields = _referenced_fields(_parse(PIPELINE, *OUTPUTS))
    # [log.level] is the dotted key a line decoded by the json filter keeps.
    unknown = {f for f in fields if f not in FIELDS}
    assert not unknown, f"the pipeline names fields outside the contract: {sorted(unknown)}"
    assert {"event.action", "kubernetes.container.name", "data_stream.namespace"} <= fields


def test_action_conditions_name_contract_actions() -> None:
    equals, patterns = _action_literals(_parse(PIPELINE))
    assert equals, "the pipeline compares event.action with nothing?"
    assert all(action_spec(value) for value in equals), equals
    for pattern in patterns:
        examples = [a.name.replace(".*", ".x") for a in ACTIONS]
        assert any(re.search(pattern, e) for e in examples), f"{pattern} matches no action"


def test_only_the_function_container_is_kept() -> None:
    content = _parse(PIPELINE)
    drops = [n for n in _walk(content) if isinstance(n, LsclConditions)]
    text = repr(drops)
    assert "'kubernetes', 'container', 'name'" in text and "'user-container'" in text
