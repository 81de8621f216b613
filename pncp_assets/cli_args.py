"""What every command line of the package shares: one-line errors, dates, log lines, local storage checks."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from pncp_assets.brasilia import parse_day


class OneLineParser(argparse.ArgumentParser):
    """Bad input: exit code 2 and a single line, not a usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def day_arg(text: str) -> str:
    try:
        return parse_day(text).strftime("%Y%m%d")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def log_to_stderr(level: int = logging.INFO) -> None:
    """This package's log lines of `level` and above on stderr (not those of the libraries it imports,
    e.g. Dagster's: the root logger gets no handler). Idempotent: a second call only sets the level."""
    log = logging.getLogger("pncp_assets")
    handler = next((h for h in log.handlers if getattr(h, "pncp_cli", False)), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
        handler.pncp_cli = True  # type: ignore[attr-defined]
        log.addHandler(handler)
    handler.setLevel(level)
    log.setLevel(min(level, logging.INFO))  # the package's INFO lines still reach any other handler


def existing_local_root(storage: Any) -> None:
    """For local storage: refuse a PNCP_DATA_DIR that is a file, or a Bronze folder that does not exist
    (a command that only reads must not create storage where a typo points)."""
    if storage.storage_type != "local":
        return
    data_dir = Path(storage.data_dir)
    if data_dir.exists() and not data_dir.is_dir():
        raise ValueError(f"PNCP_DATA_DIR={storage.data_dir} is a file, not a directory")
    root = data_dir / storage.bucket
    if not root.is_dir():
        raise ValueError(f"no Bronze storage at {root} (PNCP_DATA_DIR, BRONZE_BUCKET)")
