"""The house's shape, measured from the code's own imports and definitions: no import circle, nothing in
`models/` that reaches up to checkpoints, the command line, the pipeline or the web server, a package root
that holds the inference API, short functions, a thin app.py."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "voice2face"
APP = PACKAGE.parent / "app.py"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def exists(name: str) -> bool:
    """Whether `name` is a module or package of voice2face."""
    place = PACKAGE.parent / Path(*name.split("."))
    return place.with_suffix(".py").is_file() or (place / "__init__.py").is_file()


def imports_of(path: Path) -> set[str]:
    """Every voice2face module or package that `path` imports, at the top or inside a function."""
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = ".".join((package[: len(package) - node.level + 1] if node.level else []) + (node.module.split(".") if node.module else []))
            found |= {f"{base}.{a.name}" if exists(f"{base}.{a.name}") else base for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return {name for name in found if name.startswith("voice2face") and exists(name)} - {module_name(path)}


def graph() -> dict[str, set[str]]:
    return {module_name(path): imports_of(path) for path in PACKAGE.rglob("*.py")}


def test_no_module_imports_itself_through_others():
    edges, circles, done = graph(), [], set()

    def visit(node: str, stack: list[str]) -> None:
        for nxt in sorted(edges.get(node, ())):
            if nxt in stack:
                circles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in done:
                visit(nxt, stack + [nxt])
        done.add(node)

    for module in sorted(edges):
        visit(module, [module])
    assert circles == []


def test_the_networks_never_reach_up_to_what_builds_on_them():
    upward = ("voice2face.checkpoint", "voice2face.cli", "voice2face.pipeline", "voice2face.web", "voice2face.training", "voice2face.evaluate")
    reaching = {m: sorted(n for n in deps if n.startswith(upward)) for m, deps in graph().items() if m.startswith("voice2face.models")}
    assert {m: deps for m, deps in reaching.items() if deps} == {}


def test_the_package_root_is_the_inference_api():
    modules = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(modules) <= 12, modules


def test_no_function_is_longer_than_80_lines():
    long = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 80:
                long.append(f"{path.relative_to(PACKAGE)}:{node.name} {node.end_lineno - node.lineno + 1} lines")
    assert long == []


def test_app_py_only_starts_the_server():
    assert len(APP.read_text().splitlines()) <= 150


def test_app_py_leaves_gradio_to_be_imported_beside_the_warm_up():
    """app.py imports Gradio (about 3 s of Python) only once the model warms up on another thread, so the two
    share the cores: an import of the web page at the top of app.py would put them one after the other again."""
    load_app = (f"import importlib.util, sys; spec = importlib.util.spec_from_file_location('app', {str(APP)!r}); "
                "spec.loader.exec_module(importlib.util.module_from_spec(spec)); print('gradio' in sys.modules)")  # fmt: skip
    imported = subprocess.run([sys.executable, "-c", load_app], capture_output=True, text=True, timeout=120)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip() == "False"
