"""The package's layers, read from its imports (module-level and deferred ones alike).

A module may import its own package and any layer below its own; never a layer above
or beside it. The leaves (``errors``, ``fileio``, ``distributed``, ``registry``, ``shards``) import nothing of
vidssl but the errors, so that every layer may use them; no two modules import each
other, directly or through others.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "vidssl"

# part of the package -> layer; a module may import parts of a lower layer only (and its own part)
LAYERS = {
    "errors": 0, "fileio": 0,
    "distributed": 1, "registry": 1, "shards": 1,
    "config": 2,
    "data": 3, "models": 3, "idt": 3,
    "losses": 4,
    "methods": 5,
    "engine": 6,
    "eval": 7,
    "viz": 8,
    "workflow": 9,
    "demo": 10,
    "commands": 11,
    "cli": 12, "__init__": 12,
    "__main__": 13,
}


def module_name(path: Path, package: Path) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path, package_name: str) -> set[str]:
    """Every ``package_name.*`` module that ``path`` imports, anywhere in the file."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == package_name}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] != package_name:
                continue
            out.add(node.module)
            # "from vidssl.data import video" imports the module vidssl.data.video (kept if it is one)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


def import_graph(package: Path) -> dict[str, set[str]]:
    name = package.name
    modules = {module_name(p, package): p for p in package.rglob("*.py")}
    graph = {}
    for mod, path in modules.items():
        graph[mod] = {t for t in imports_of(path, name) if t in modules and t not in (name, mod)}
    return graph


def part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for mod, targets in sorted(graph.items()):
        src = part(mod)
        for t in sorted(targets):
            dst = part(t)
            if dst == src:
                continue
            if dst not in LAYERS or src not in LAYERS:
                bad.append(f"{mod} -> {t}: part {dst if dst not in LAYERS else src!r} has no layer")
            elif LAYERS[dst] >= LAYERS[src]:
                bad.append(f"{mod} (layer {LAYERS[src]}) imports {t} (layer {LAYERS[dst]})")
    return bad


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Import circles, each as the path that closes it."""
    found, state = [], {}

    def visit(node, stack):
        state[node] = 1
        stack.append(node)
        for t in sorted(graph.get(node, ())):
            if state.get(t) == 1:
                found.append(stack[stack.index(t):] + [t])
            elif t not in state:
                visit(t, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    return found


def test_layers_only_look_down():
    graph = import_graph(PACKAGE)
    # the reader sees the imports (module-level and deferred)
    assert {"vidssl.methods", "vidssl.distributed", "vidssl.data.builtin"} <= graph["vidssl.engine.trainer"]
    assert layer_violations(graph) == []


def test_no_import_circles():
    assert cycles(import_graph(PACKAGE)) == []


def test_leaf_modules_import_only_the_errors():
    graph = import_graph(PACKAGE)
    assert graph["vidssl.errors"] == set() and graph["vidssl.fileio"] == set()
    assert graph["vidssl.distributed"] <= {"vidssl.errors"}
    assert graph["vidssl.registry"] <= {"vidssl.errors"}
    assert graph["vidssl.shards"] <= {"vidssl.errors"}


def test_no_library_module_imports_the_command_layer():
    graph = import_graph(PACKAGE)
    for mod, targets in graph.items():
        if part(mod) not in ("commands", "cli", "__main__"):
            assert not {t for t in targets if part(t) in ("commands", "cli")}, mod


def test_config_does_not_import_torch():
    tree = ast.parse((PACKAGE / "config.py").read_text())
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert "torch" not in names


def _write_tree(root: Path, files: dict[str, str]) -> Path:
    pkg = root / "vidssl"
    for rel, text in files.items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(text)
    return pkg


@pytest.mark.parametrize("files, expect", [
    # a method that reaches into the engine
    ({"methods/simclr.py": "from vidssl.engine.trainer import train\n", "engine/trainer.py": ""}, "layer"),
    # models that know the data pipeline (same layer, other part), through a deferred import
    ({"models/r3d.py": "def f():\n    from vidssl.data import video\n", "data/video.py": ""}, "layer"),
    # config that imports the methods
    ({"config.py": "import vidssl.methods.la\n", "methods/la.py": ""}, "layer"),
    # a library module that imports a command
    ({"demo.py": "from vidssl.commands.evaluate import evaluate\n", "commands/evaluate.py": ""}, "layer"),
    # a circle inside one part
    ({"data/a.py": "from vidssl.data.b import x\n", "data/b.py": "from vidssl.data.a import y\n"}, "cycle"),
])
def test_the_checks_catch_a_broken_rule(tmp_path, files, expect):
    pkg = _write_tree(tmp_path, {"__init__.py": "", "errors.py": "", **files})
    graph = import_graph(pkg)
    if expect == "layer":
        assert layer_violations(graph), graph
    else:
        assert cycles(graph) and not layer_violations(graph)
