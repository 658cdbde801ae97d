"""dashboard.core must stay pure: no I/O frameworks, so it can be reused and fuzzed anywhere."""

import ast
import pathlib

import dashboard.core

FORBIDDEN = {"asyncio", "tornado", "aiohttp", "panel", "param", "bokeh", "redis", "socket"}
CORE = pathlib.Path(dashboard.core.__file__).parent


def imported_roots(path: pathlib.Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_core_imports_no_io_framework():
    modules = sorted(CORE.glob("*.py"))
    assert len(modules) >= 8
    offenders = {p.name: imported_roots(p) & FORBIDDEN for p in modules}
    assert {name: bad for name, bad in offenders.items() if bad} == {}


def test_core_does_not_import_higher_layers():
    for path in CORE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level >= 2:
                raise AssertionError(f"{path.name} imports from outside core: {node.module}")
