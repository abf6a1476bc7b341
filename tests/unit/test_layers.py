"""The packages' arrows point one way, and no module imports itself in a loop.

A small AST check rather than import-linter: the rule fits in a table and
twenty lines, needs no dependency, and reads every `import`, including those
inside functions and under TYPE_CHECKING (a loop hidden there is still a loop).
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support.helpers import REPO

# Lower rank = more basic.  A package imports only packages of a lower rank;
# packages of equal rank (the three runtimes) never import each other.
RANK = {
    "kernel": 0,      # settings, connections, topics, retry, time, errors
    "schemas": 1,     # the contracts and their validation
    "domain": 2,      # pure rules: alerts, categories, survey figures, contacts
    "store": 3,       # the only code that knows the Redis layout
    "usecases": 4,    # what the CLI and the HTTP API both do
    "streams": 5,     # the worker
    "consumers": 5,   # downstream sinks
    "dashboard": 5,   # pages and HTTP API
    "cxt": 6,         # the command line: starts any of the above
}


def _modules() -> dict[str, Path]:
    found = {}
    for package in RANK:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported module) of every absolute import of ours in the file."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        targets = []
        for name in names:
            if name.split(".")[0] in RANK:
                # `from pkg import mod` names a module; `from mod import func` does not.
                target = name if name in MODULES else name.rsplit(".", 1)[0]
                if target in MODULES and target not in targets:
                    targets.append(target)
        out += [(node.lineno, target) for target in targets]
    return out


def test_no_import_points_up_or_sideways() -> None:
    wrong = []
    for name, path in MODULES.items():
        mine = name.split(".")[0]
        for line, target in _imports(path):
            theirs = target.split(".")[0]
            if theirs != mine and RANK[theirs] >= RANK[mine]:
                wrong.append(f"{path.relative_to(REPO)}:{line}: {mine} imports {target}")
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_no_import_loop() -> None:
    graph = {name: {t for _, t in _imports(path) if t != name}
             for name, path in MODULES.items()}
    # A package's __init__ importing its own modules is not a loop worth naming.
    for name in graph:
        graph[name] = {t for t in graph[name] if not name.startswith(t + ".")}
    loops = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                loops.append(" -> ".join([*path[path.index(target):], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not loops, "import loops:\n" + "\n".join(loops)


def test_the_check_sees_a_wrong_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from streams.processor import Processor\nimport cxt.cli\n")
    assert [t for _, t in _imports(bad)] == ["streams.processor", "cxt.cli"]
