"""The store server is not device code and does not import it: everything it shares with the
devices (envelope, screening, dedupe, durable store, link, config, delivery codes, command-line
helpers) is in the core, ``storeedge/``."""
from __future__ import annotations

import ast
from pathlib import Path

SERVER = Path(__file__).resolve().parents[2] / "server"


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
    return names


def test_no_server_module_imports_device_code():
    files = sorted(SERVER.rglob("*.py"))
    assert len(files) > 10                                   # the walk found the server
    offending = {f"{f.relative_to(SERVER)}: {name}" for f in files for name in _imports(f)
                 if name.startswith(("storeedge.firmware", "firmware"))}
    assert not offending, sorted(offending)
