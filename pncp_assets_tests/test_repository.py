"""The repository is self-contained: no file refers a reader to a document that is not in it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OUTSIDE = "../" + "shared"  # the team's notes beside the repository, which a user does not have


def tracked_text_files() -> list[Path]:
    names = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    return [REPO / n for n in names if n.endswith((".py", ".md", ".toml", ".yaml", ".sh", ".cfg", ".txt"))
            or n.startswith(".ci/")]


def test_no_file_points_outside_the_repository():
    for path in tracked_text_files():
        text = path.read_text(encoding="utf-8")
        assert OUTSIDE not in text, path


def test_every_markdown_document_named_exists():
    for path in tracked_text_files():
        text = path.read_text(encoding="utf-8")
        for name in set(re.findall(r"\b([A-Z][A-Z_]+\.md)\b", text)):
            found = [p for p in (REPO / name, REPO / "docs" / name, path.parent / name) if p.exists()]
            assert found, f"{path.relative_to(REPO)} names {name}, which is not in the repository"


def _import_graph() -> dict[str, set[str]]:
    """Module -> every module it imports (function-level imports included), by reading the package's source."""
    import ast

    package = REPO / "pncp_assets"
    imports: dict[str, set[str]] = {}
    for path in package.rglob("*.py"):
        name = ".".join(("pncp_assets", *path.relative_to(package).with_suffix("").parts)).removesuffix(".__init__")
        deps = imports.setdefault(name, set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "pncp_assets":
                deps.update(f"pncp_assets.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                deps.add(node.module)
            elif isinstance(node, ast.Import):
                deps.update(alias.name for alias in node.names)
    return imports


# What sits above the domain: the Dagster wiring, the commands, the original document's facade, the instance's
# deployment code. Everything else in the package is the domain (and the storage below it).
ABOVE_THE_DOMAIN = ("pncp_assets.defs", "pncp_assets.definitions", "pncp_assets.cli", "pncp_assets.cli_args",
                    "pncp_assets.checks", "pncp_assets.backfill", "pncp_assets.demo", "pncp_assets.document_api",
                    "pncp_assets.deploy",
                    "pncp_assets.state.__main__")


def _above(module: str) -> bool:
    return any(module == top or module.startswith(f"{top}.") for top in ABOVE_THE_DOMAIN)


def test_no_domain_module_imports_the_wiring_the_commands_the_facade_or_dagster():
    """The import graph of the package, read from its source: no arrow from the domain up to the command
    line, the environment reader (`defs.environment`), the original document's facade or Dagster."""
    graph = _import_graph()
    domain = [m for m in graph if not _above(m)]
    assert "pncp_assets.layers" in domain and "pncp_assets.commit" in domain and len(domain) > 20
    arrows_up = {m: sorted(d for d in graph[m] if _above(d) or d.split(".")[0] == "dagster") for m in domain}
    assert {m: up for m, up in arrows_up.items() if up} == {}


def test_the_package_has_no_import_cycle():
    """Imports point one way (Dagster wiring -> domain -> storage), function-level imports included."""
    imports = {m: {d for d in deps if d.startswith("pncp_assets")} for m, deps in _import_graph().items()}

    def reachable(start: str) -> set[str]:
        seen: set[str] = set()
        todo = [start]
        while todo:
            for dep in imports.get(todo.pop(), ()):
                if dep not in seen:
                    seen.add(dep)
                    todo.append(dep)
        return seen

    assert [m for m in sorted(imports) if m in reachable(m)] == []


CORE = ("pncp_assets.state", "pncp_assets.state.day", "pncp_assets.state.archive", "pncp_assets.commit",
        "pncp_assets.consistency", "pncp_assets.links", "pncp_assets.retention")


@pytest.mark.parametrize("module", CORE)
def test_the_core_reaches_neither_the_documents_facade_nor_the_command_line_nor_dagster(module):
    """The core takes its storage explicitly: loading it, in a fresh interpreter, loads no Dagster, no
    command line, no environment reader and not the original document's interface."""
    outside = "('pncp_assets.document_api', 'pncp_assets.cli', 'pncp_assets.cli_args')"
    code = (f"import sys, {module}; bad = sorted(m for m in sys.modules if m.split('.')[0] == 'dagster' or m in "
            f"{outside} or m.startswith('pncp_assets.defs')); print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO).stdout
    assert out.strip() == "[]", out
