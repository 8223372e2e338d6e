"""No import circle anywhere in femdc_bench/: the imports of every module (read with
ast, not imported), at any depth (a function's lazy import counts: it is a dependency
all the same), but for those under `if TYPE_CHECKING:`; a string naming a module of the
package counts too where it is a dict's value or import_module's argument (the
registries, providers/__init__.py and deploy/__init__.py, import their modules by name).
Importing a module imports its packages first: an edge to a package is one to its
__init__.py, but a module's own packages are not its imports."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "femdc_bench"


def modules(root: Path = ROOT) -> dict[str, Path]:
    out = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    """The module `name` is, or is in (`pkg.mod.attr` -> `pkg.mod`)."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    # A module named by a string is imported where the string is a registry's entry (a
    # dict's value) or import_module's argument; elsewhere (`python -m MODULE` on a host)
    # it starts a process, which is no import.
    by_name: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            by_name |= {id(v) for v in node.values if v is not None}
        elif (isinstance(node, ast.Call) and node.args
              and ast.unparse(node.func).endswith("import_module")):
            by_name.add(id(node.args[0]))
    is_package = path.name == "__init__.py"
    targets: list[str] = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            targets += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                here = name.split(".") if is_package else name.split(".")[:-1]
                here = here[:len(here) - (node.level - 1)]
                base = ".".join([*here, base] if base else here)
            targets += [base, *(f"{base}.{a.name}" for a in node.names)]
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
              and node.value in known and id(node) in by_name):
            targets.append(node.value)
    out = set()
    own = set(_ancestors(name))
    for target in targets:
        if not target.startswith(PACKAGE):
            continue
        module = _resolve(target, known)
        if module is None:
            continue
        # importing a module runs its packages' __init__.py first
        for dep in [*_ancestors(module), module]:
            if dep != name and dep not in own and dep != PACKAGE:
                out.add(dep)
    return out


def graph(root: Path = ROOT) -> dict[str, set[str]]:
    known = modules(root)
    return {name: imports(name, path, known) for name, path in known.items()}


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_import_circle_in_the_package() -> None:
    assert circles(graph()) == []


def test_the_walk_sees_imports_and_finds_a_circle(tmp_path: Path) -> None:
    """The walk is not blind: a lazy import, a relative one, a registry's string and a
    package's __init__ all make edges, and a circle through them is found."""
    pkg = tmp_path / PACKAGE
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from . import b\n")
    (pkg / "a.py").write_text("def f():\n    from femdc_bench.sub import c\n")
    (pkg / "sub" / "b.py").write_text("X = 1\n")
    (pkg / "sub" / "c.py").write_text("MODULES = {'x': 'femdc_bench.d'}\n")
    (pkg / "d.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import femdc_bench.e\n"
        "from .sub import b\n")
    (pkg / "e.py").write_text("import femdc_bench.d\n")
    (pkg / "f.py").write_text("ARGV = ['python3', '-m', 'femdc_bench.a']\n")  # a process
    edges = graph(tmp_path)
    assert edges[f"{PACKAGE}.f"] == set()
    assert edges[f"{PACKAGE}.a"] == {f"{PACKAGE}.sub", f"{PACKAGE}.sub.c"}
    assert edges[f"{PACKAGE}.sub.c"] == {f"{PACKAGE}.d"}
    assert edges[f"{PACKAGE}.d"] == {f"{PACKAGE}.sub", f"{PACKAGE}.sub.b"}  # not e
    assert circles(edges) == []  # sub.b does not import back
    (pkg / "sub" / "b.py").write_text("import femdc_bench.a\n")
    assert circles(graph(tmp_path)) == [[f"{PACKAGE}.a", f"{PACKAGE}.d", f"{PACKAGE}.sub",
                                         f"{PACKAGE}.sub.b", f"{PACKAGE}.sub.c"]]
