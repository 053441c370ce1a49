"""Packages form layers: no import cycle between them (`make lint` runs this).

The graph is read from the source, not from what happens to be imported: every
`import` and `from … import` statement in gateway/, adapters/ and policies/,
function-level ones included; those under `if TYPE_CHECKING:` are left out, as
they name types for annotations and import nothing when the code runs (the
typed state, gateway/state.py, names what every layer holds). A node is a
subpackage (`gateway.audit`, `policies.risk`) or a top-level module
(`gateway.errors`); an edge says some module of one imports a module of the
other. The keys sit at the bottom: they
import no feature and nothing of the access pipeline or the identity server.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from itertools import pairwise
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("gateway", "adapters", "policies")
# What the key store may lean on: configuration, the tables, time.
KEYS_MAY_IMPORT = frozenset({"gateway.settings", "gateway.store", "gateway.timeutil"})

Edges = dict[str, dict[str, str]]  # node → node it imports → a file that does


def _module_of(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _exists(module: str, root: Path) -> bool:
    base = root.joinpath(*module.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def node_of(module: str) -> str:
    """The package a module belongs to: its subpackage, or itself at the top."""
    return ".".join(module.split(".")[:2])


def _type_checking_only(tree: ast.AST) -> set[ast.AST]:
    """The statements inside `if TYPE_CHECKING:` blocks."""
    inside: set[ast.AST] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in _TYPE_CHECKING:
            for statement in node.body:
                inside.update(ast.walk(statement))
    return inside


_TYPE_CHECKING = frozenset({"TYPE_CHECKING", "typing.TYPE_CHECKING"})


def _imported(tree: ast.AST, module: str, is_package: bool, root: Path) -> set[str]:
    found: set[str] = set()
    skipped = _type_checking_only(tree)
    for statement in ast.walk(tree):
        if statement in skipped:
            continue
        if isinstance(statement, ast.Import):
            found.update(alias.name for alias in statement.names)
        elif isinstance(statement, ast.ImportFrom):
            base = statement.module or ""
            if statement.level:
                package = module.split(".")[: len(module.split(".")) - statement.level + is_package]
                base = ".".join([*package, base] if base else package)
            for alias in statement.names:
                # `from gateway.keys import jose` imports the module gateway.keys.jose.
                whole = f"{base}.{alias.name}"
                found.add(whole if _exists(whole, root) else base)
    return {name for name in found if name.split(".")[0] in PACKAGES and _exists(name, root)}


def import_graph(root: Path = ROOT) -> Edges:
    edges: Edges = defaultdict(dict)
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            module = _module_of(path, root)
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
            for target in _imported(tree, module, path.name == "__init__.py", root):
                source, dest = node_of(module), node_of(target)
                if source != dest:
                    edges[source].setdefault(dest, str(path.relative_to(root)))
    return edges


def cycles(edges: Edges) -> list[list[str]]:
    """One cycle per strongly connected component of more than one package."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in edges.get(node, {}):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while (member := stack.pop()) != node:
                component.append(member)
            components.append([node, *component])

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return [_a_cycle(edges, set(c)) for c in components if len(c) > 1]


def _a_cycle(edges: Edges, component: set[str]) -> list[str]:
    """The shortest way round from the component's first package back to it."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        after = []
        for node in frontier:
            for nxt in sorted(edges.get(node, {})):
                if nxt == start:
                    return [*paths[node], start]
                if nxt in component and nxt not in paths:
                    paths[nxt] = [*paths[node], nxt]
                    after.append(nxt)
        frontier = after
    raise AssertionError("a strongly connected component always has a cycle")


def describe(edges: Edges, cycle: list[str]) -> str:
    steps = [f"{a} → {b} ({edges[a][b]})" for a, b in pairwise(cycle)]
    return "; ".join(steps)


def test_no_import_cycle_between_packages() -> None:
    edges = import_graph()
    found = [describe(edges, cycle) for cycle in cycles(edges)]
    assert not found, "import cycles between packages:\n" + "\n".join(found)


def test_keys_are_the_bottom_layer() -> None:
    above = set(import_graph().get("gateway.keys", {})) - KEYS_MAY_IMPORT
    assert not above, f"gateway.keys imports packages above it: {sorted(above)}"


def test_a_cycle_is_named(tmp_path: Path) -> None:
    for name, body in {
        "a/__init__.py": "",
        "a/one.py": "def late() -> None:\n    from gateway.b import two\n",
        "b/__init__.py": "",
        "b/two.py": "from gateway.a import one\n",
        "c/__init__.py": "",
        "c/three.py": (
            "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from gateway.a import one\n"
        ),
        "a/four.py": "from gateway.c import three\n",
    }.items():
        path = tmp_path / "gateway" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
    for package in PACKAGES[1:]:
        (tmp_path / package).mkdir()
    edges = import_graph(tmp_path)
    assert [describe(edges, c) for c in cycles(edges)] == [
        "gateway.a → gateway.b (gateway/a/one.py); gateway.b → gateway.a (gateway/b/two.py)"
    ]
