"""The repository is self-contained: no file refers a reader to a document that is not in it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

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


def test_the_package_has_no_import_cycle():
    """Imports point one way (Dagster wiring -> domain -> storage), function-level imports included."""
    import ast

    package = REPO / "pncp_assets"
    imports: dict[str, set[str]] = {}
    for path in package.rglob("*.py"):
        name = ".".join(("pncp_assets", *path.relative_to(package).with_suffix("").parts)).removesuffix(".__init__")
        deps = imports.setdefault(name, set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "pncp_assets":
                deps.update(f"pncp_assets.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pncp_assets."):
                deps.add(node.module)

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
