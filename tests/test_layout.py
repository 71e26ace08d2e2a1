"""The tests' own layout: command tests mirror doki_cli/commands/, and shared helpers live in tests/helpers/ (or a
conftest.py), never in a test module another imports."""

from __future__ import annotations

import ast

from tests.helpers import REPO

TESTS = REPO / "tests"


def _imported_modules(path: str) -> set[str]:
    tree = ast.parse((REPO / path).read_text())
    modules = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    return modules | {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}


def test_no_test_module_imports_another_test_module() -> None:
    offenders = [
        f"{path.relative_to(REPO)} imports {module}"
        for path in sorted(TESTS.rglob("*.py"))
        for module in sorted(_imported_modules(str(path.relative_to(REPO))))
        if module.startswith("tests.") and module.rsplit(".", 1)[-1].startswith("test_")
    ]
    assert offenders == []


def test_every_command_module_has_tests_under_commands() -> None:
    commands = sorted(path.stem for path in (REPO / "doki_cli" / "commands").glob("*.py") if path.stem != "__init__")
    tested = {path.stem for path in (TESTS / "doki_cli" / "commands").glob("test_*.py")}
    untested = [
        name
        for name in commands
        if not any(t == f"test_{name.lstrip('_')}" or t.startswith(f"test_{name.lstrip('_')}_") for t in tested)
    ]
    assert untested == []
