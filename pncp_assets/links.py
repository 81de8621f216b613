"""Cross-feed links: the contratação each contrato and ata points at (`numeroControlePncpCompra`,
`numeroControlePNCPCompra`), looked up in Bronze.

A contratação ID does not say its day, so "Bronze holds it" means: one of the contratações layers (`pncp/`,
first seen; `pncp_versions/`, any version) filed it on a day within `LOOKBACK_DAYS` up to the linking
record's day, as the day states say. A record pointing elsewhere (a contratação published before the
pipeline's start, or never ingested) is reported, never dropped: it is in Bronze like any other.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pncp_assets import bronze, layout
from pncp_assets.layers import FIRST_SEEN, VERSIONS, Layer
from pncp_assets.state import StateManager
from pncp_assets.storage import NotFound, ObjectStore

LOOKBACK_DAYS = 31  # contratos and atas are mostly signed within weeks of their contratação


@dataclass
class LinkReport:
    """One hour's rows and how many point at a contratação Bronze does not hold (with examples)."""

    records: int = 0
    missing: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)  # up to 10: {"id", "contratacao"}


class ContratacaoIndex:
    """The contratação IDs Bronze holds, by day, read from the day states once per index."""

    def __init__(self, storage: ObjectStore):
        self.state = StateManager(storage)
        self._days: dict[dt.date, frozenset[str]] = {}

    def of_day(self, day: dt.date) -> frozenset[str]:
        if day not in self._days:
            first = self.state.load_fresh(FIRST_SEEN.source, day).state.ids
            versions = {key.split("@", 1)[0] for key in self.state.load_fresh(VERSIONS.source, day).state.ids}
            self._days[day] = frozenset(first | versions)
        return self._days[day]

    def missing(self, contratacoes: set[str], day: dt.date, days: int = LOOKBACK_DAYS) -> set[str]:
        """Those of `contratacoes` that no day of the window up to `day` holds."""
        left = set(contratacoes)
        for back in range(days + 1):
            if not left:
                break
            left -= self.of_day(day - dt.timedelta(days=back))
        return left


def link_reports(storage: ObjectStore, layer: Layer, hours: Sequence[str],
                 index: ContratacaoIndex | None = None) -> dict[str, LinkReport]:
    """Per hour: the rows of its published delta, and those pointing at a contratação Bronze does not hold."""
    if layer.link_field is None:
        raise ValueError(f"{layer.source} records point at no contratação")
    index = index or ContratacaoIndex(storage)
    reports: dict[str, LinkReport] = {}
    for hour in hours:
        try:
            data = storage.get(layout.delta_key(layer.source, hour)).data
        except NotFound:
            reports[hour] = LinkReport()
            continue
        rows = bronze.read_parquet(data, [layer.id_field, layer.link_field]).to_pylist()
        links = {r[layer.link_field] for r in rows if isinstance(r[layer.link_field], str)}
        gone = index.missing(links, layout.parse_partition_key(hour).date())
        bad = [r for r in rows if r[layer.link_field] in gone or not isinstance(r[layer.link_field], str)]
        reports[hour] = LinkReport(len(rows), len(bad), [{"id": r[layer.id_field], "contratacao": r[layer.link_field]}
                                                         for r in bad[:10]])
    return reports
