"""The package's modules import each other without a cycle, and name their public API.

The graph is read from the source with `ast`: every import statement of a
module, at its top or inside a function (a lazy import is a dependency all
the same, paid later), except those under `if TYPE_CHECKING:`, which never
run, and those in a module-level `__getattr__` (PEP 562): that is a name
offered lazily to the package's users (`scgi_inetd.run_app`), which no module
of the package itself uses. A module importing one of its own package
(`from . import __version__`) counts too: `scgi_inetd.options` depends on
`scgi_inetd`. Where a front-end picks a module to run (cgi_cli importing
status_fixup for --fix-status), the lazy import points down and is no cycle.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import scgi_inetd

PACKAGE = Path(scgi_inetd.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _not_a_dependency(node: ast.AST, parent: ast.AST) -> bool:
    """An `if TYPE_CHECKING:` block, or a module's lazy `__getattr__`."""
    if isinstance(node, ast.If):
        return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
    return isinstance(parent, ast.Module) and isinstance(node, ast.FunctionDef) and node.name == "__getattr__"


def imports_of(name: str) -> set[str]:
    """The package's modules that module `name` imports (at run time, anywhere in it)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if _not_a_dependency(child, node):
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.rsplit(".", child.level - 1)[0] if child.level > 1 else package
                    base = f"{anchor}.{base}" if base else anchor
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in child.names)
            visit(child)

    visit(ast.parse(path.read_text(), str(path)))
    return {module for module in found if module in MODULES and module != name}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle in `graph` (a list of modules, the first repeated at the end), or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for other in sorted(graph[node]):
            if state.get(other) == "open":
                return stack[stack.index(other):] + [other]
            if other not in state and (cycle := walk(other)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := walk(node)):
            return cycle
    return None


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles():
    graph = {name: imports_of(name) for name in MODULES}
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_argument_parser_and_the_library_do_not_reach_up():
    """options (argv parsing) knows nothing of the resident loop; the library nothing of its CLIs."""
    assert "scgi_inetd.resident" not in imports_of("scgi_inetd.options")
    for name in ("scgi_inetd.wsgi", "scgi_inetd.cgi_exec", "scgi_inetd.protocol", "scgi_inetd.reader",
                 "scgi_inetd.answer"):
        assert not {module for module in imports_of(name) if module.endswith("_cli")}, name


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_module_lists_its_public_names(name):
    """`__all__` in every module, naming only what the module defines or imports, and every public
    function and class defined there."""
    module = importlib.import_module(name)
    listed = getattr(module, "__all__", None)
    assert listed is not None, f"{name} has no __all__"
    assert len(set(listed)) == len(listed), name
    missing = [item for item in listed if not hasattr(module, item)]
    assert not missing, f"{name}.__all__ names what it lacks: {missing}"
    tree = ast.parse(MODULES[name].read_text())
    defined = {node.name for node in tree.body
               if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_")}
    assert defined <= set(listed), f"{name}.__all__ lacks {sorted(defined - set(listed))}"


def test_serve_options_declares_every_option_for_the_type_checker():
    """ServeOptions' attributes come from the OPTIONS table at run time; the annotations mypy reads must match it."""
    from scgi_inetd.options import OPTIONS

    tree = ast.parse(MODULES["scgi_inetd.options"].read_text())
    serve_options = next(node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "ServeOptions")
    declared = [node.target.id for block in serve_options.body if isinstance(block, ast.If)
                for node in block.body if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)]
    assert declared == [entry[2] for entry in OPTIONS]
