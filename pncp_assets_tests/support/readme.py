"""The README's runnable snippets: each ```python block whose first line is `# <kind>: <name>`."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_snippets(kind: str = "reader") -> dict[str, str]:
    """Name -> code of the README's `# <kind>: <name>` snippets (kind "reader": read Bronze; "current":
    the current view)."""
    blocks = re.findall(rf"```python\n(# {re.escape(kind)}: (\w+)\n.*?)```", README.read_text(), flags=re.S)
    return {name: code for code, name in blocks}
