"""Helpers that make PNCP-shaped records for tests (from the real samples)."""

from __future__ import annotations

import copy
from typing import Any


def make_id(n: int, cnpj: str = "12345678000190", year: int = 2025) -> str:
    return f"{cnpj}-1-{n:06d}/{year}"


def record_like(template: dict[str, Any], n: int, **changes: Any) -> dict[str, Any]:
    """A copy of a real record with a new ID (and any field changes)."""
    record = copy.deepcopy(template)
    record["numeroControlePNCP"] = make_id(n)
    record["sequencialCompra"] = n
    record.update(changes)
    return record


def encode_parquet(records: list[dict[str, Any]], **kwargs: Any) -> bytes:
    """Contratações as one Bronze Parquet file of the first-seen layer (a delta written by hand)."""
    from pncp_assets import bronze
    from pncp_assets.layers import FIRST_SEEN

    return bronze.table_to_parquet(FIRST_SEEN.to_table(records, **kwargs))
