"""The import rule of the layout (docs/architecture.md, "Layout"): the arrows go
tools -> functions -> common and never back, and inside tools/ from a higher floor down.

- `common` (the deployed library) imports neither `functions` nor `tools`;
- `functions` import only `common` (and each other's packages), never `tools`;
- `tools` may import both; a module of tools/ imports only its own room and the rooms on
  the floors below it (FLOORS), never one above.

Every import statement counts, also one inside a function body (a lazy import is still a
dependency the image would need, or a loop between rooms).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tools import REPO_ROOT

OURS = ("common", "functions", "tools", "tests")
# What each of our packages may import of ours.
ALLOWED = {
    "common": {"common"},
    "functions": {"common", "functions"},
    "tools": {"common", "functions", "tools"},
}

# The rooms of tools/, from the bottom floor up: a module may import its own room and the
# rooms listed before it. A room is a module or a package; a module belongs to the
# longest room that contains it. The runtime's own floors: the pieces every part of it
# shares, then eventing (the sources), then serving (the functions, which the sources'
# deliveries reach), then `up` and what runs it (state, stopping, control, ...).
FLOORS: tuple[tuple[str, ...], ...] = (
    ("tools", "tools.settings", "tools.progress", "tools.apiclient", "tools.log_contract",
     "tools.task_launcher"),
    ("tools.manifests",),
    ("tools.infra",),
    ("tools.runtime.console", "tools.runtime.logtail", "tools.runtime.proctitle"),
    ("tools.runtime.eventing",),
    ("tools.runtime.serving",),
    ("tools.runtime",),
    ("tools.ops",),
    ("tools.loadgen",),
    ("tools.demo",),
    ("tools.deploy",),
    ("tools.image",),
    ("tools.bench",),
    ("tools.cli",),
)
FLOOR_OF = {room: floor for floor, rooms in enumerate(FLOORS) for room in rooms}


def imported_modules(source: str, modules: frozenset[str] = frozenset()) -> set[str]:
    """Every module of ours that `source` imports: `from a.b import c` imports a.b.c when
    that is one of `modules`, else (c is a name in it) a.b."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            base = node.module
            found |= {f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                      for alias in node.names}
    return {name for name in found if name.split(".")[0] in OURS}


def imported_packages(source: str) -> set[str]:
    """The top-level packages of ours that `source` imports."""
    return {name.split(".")[0] for name in imported_modules(source)}


def violations(package: str, source: str) -> set[str]:
    return imported_packages(source) - ALLOWED[package]


def room_of(module: str) -> str | None:
    """The room of tools/ that holds `module`, or None (the package root `tools` holds only
    itself: a new module must be given a floor)."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        room = ".".join(parts[:end])
        if room in FLOOR_OF and (room != "tools" or module == "tools"):
            return room
    return None


def arrows_up(module: str, source: str, modules: frozenset[str]) -> list[str]:
    """The imports of `module` (of tools/) that climb to a higher floor, each as the arrow
    `importer -> imported (its room, floor n, imports their room, floor m)`. `modules`:
    every module of tools/, to tell `from tools.x import module` from `import name`."""
    mine = room_of(module)
    assert mine is not None, f"{module} is in no room: give it a floor in FLOORS"
    arrows = []
    for imported in sorted(imported_modules(source, modules)):
        theirs = room_of(imported) if imported.split(".")[0] == "tools" else None
        if theirs is not None and FLOOR_OF[theirs] > FLOOR_OF[mine]:
            arrows.append(f"{module} -> {imported} ({mine}, floor {FLOOR_OF[mine]}, imports "
                          f"{theirs}, floor {FLOOR_OF[theirs]})")
    return arrows


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_the_rule_catches_a_function_importing_the_tools() -> None:
    lazy = "def handler():\n    from tools.ops.status import collect\n    return collect\n"
    assert violations("functions", lazy) == {"tools"}
    assert violations("functions", "import tools.settings\n") == {"tools"}
    assert violations("common", "from functions.api import cache\n") == {"functions"}
    assert violations("common", "from common import tables\nimport json\n") == set()
    assert violations("tools", "from functions.timeouts.sweep import sweep\n") == set()


def test_the_floors_catch_a_lower_room_importing_a_higher_one() -> None:
    modules = frozenset({"tools", "tools.settings", "tools.demo", "tools.demo.catalogue",
               "tools.runtime", "tools.runtime.up", "tools.runtime.serving",
               "tools.runtime.serving.children", "tools.runtime.eventing.delivery",
               "tools.infra.kafka_clients", "tools.manifests.topics"})
    lazy = "def start():\n    from tools.demo.catalogue import seed\n    return seed\n"
    assert arrows_up("tools.runtime.up", lazy, modules) == [
        "tools.runtime.up -> tools.demo.catalogue (tools.runtime, floor 6, imports "
        "tools.demo, floor 9)"]
    climbing = "from tools.manifests.topics import TopicSpec\n"
    assert arrows_up("tools.infra.kafka_clients", climbing, modules) == []
    assert arrows_up("tools.manifests.topics", "import tools.infra.kafka_clients\n",
                     modules) == ["tools.manifests.topics -> tools.infra.kafka_clients "
                                  "(tools.manifests, floor 1, imports tools.infra, floor 2)"]
    # Inside the runtime: the sources never import the function processes.
    from_package = "from tools.runtime.serving import children\n"
    assert arrows_up("tools.runtime.eventing.delivery", from_package, modules) == [
        "tools.runtime.eventing.delivery -> tools.runtime.serving.children "
        "(tools.runtime.eventing, floor 4, imports tools.runtime.serving, floor 5)"]
    assert arrows_up("tools.runtime.up", from_package, modules) == []
    assert arrows_up("tools.demo", "from tools import REPO_ROOT\n", modules) == []
    assert room_of("tools.newcomer") is None  # a new module is placed on a floor


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_every_module_keeps_the_rule(package: str) -> None:
    files = sorted((REPO_ROOT / package).rglob("*.py"))
    assert files, f"no modules under {package}/"
    broken = {str(f.relative_to(REPO_ROOT)): sorted(bad) for f in files
              if (bad := violations(package, f.read_text(encoding="utf-8")))}
    assert broken == {}, f"imports against the rule tools -> functions -> common: {broken}"


def test_every_module_of_the_tools_imports_only_its_floor_and_below() -> None:
    files = sorted((REPO_ROOT / "tools").rglob("*.py"))
    modules = frozenset(module_name(f) for f in files)
    unplaced = sorted(m for m in modules if room_of(m) is None)
    assert unplaced == [], f"modules in no room of tools/ (give each a floor): {unplaced}"
    arrows = [arrow for f in files
              for arrow in arrows_up(module_name(f), f.read_text(encoding="utf-8"), modules)]
    assert arrows == [], "imports that climb a floor of tools/:\n" + "\n".join(arrows)
