"""Cross-feed links: the contratação each contrato and ata points at (`numeroControlePncpCompra`,
`numeroControlePNCPCompra`), looked up in Bronze.

A contratação ID does not say its day, so "Bronze holds it" means: one of the contratações layers (`pncp/`,
first seen; `pncp_versions/`, any version) filed it on a day within `LOOKBACK_DAYS` up to the linking
record's day, as the day states say. A record pointing elsewhere is reported, never dropped: it is in
Bronze like any other. Where every day of that window was ingested, a contratação Bronze lacks is
`missing` (the check fails, as a warning); where some day of it was never ingested (before the pipeline's
start, or a demo of one day), the contratação may simply be of such a day: it is counted
`outside_coverage`, with the days, and the check does not fail for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pncp_assets import bronze, layout
from pncp_assets.day_index import LOOKBACK_DAYS, DayIndex
from pncp_assets.layers import LINKED_FEED, Layer
from pncp_assets.storage import NotFound, ObjectStore

__all__ = ["LOOKBACK_DAYS", "LinkReport", "link_reports"]


@dataclass
class LinkReport:
    """One hour's rows and how many point at a contratação Bronze does not hold (with examples)."""

    records: int = 0
    missing: int = 0  # point at a contratação that no day of a fully ingested window holds
    examples: list[dict[str, Any]] = field(default_factory=list)  # up to 10: {"id", "contratacao"}
    outside_coverage: int = 0  # point at a contratação Bronze lacks, in a window with days never ingested
    uncovered: list[str] = field(default_factory=list)  # those days (first and last, when many)


def link_reports(storage: ObjectStore, layer: Layer, hours: Sequence[str],
                 index: DayIndex | None = None) -> dict[str, LinkReport]:
    """Per hour: the rows of its published delta, and those pointing at a contratação Bronze does not hold
    (`index`: the contratações' `DayIndex`, shared with other checks of the run)."""
    if layer.link_field is None:
        raise ValueError(f"{layer.source} records point at no contratação")
    index = index or DayIndex.of_feed(storage, LINKED_FEED)
    reports: dict[str, LinkReport] = {}
    for hour in hours:
        try:
            data = storage.get(layout.delta_key(layer.source, hour)).data
        except NotFound:
            reports[hour] = LinkReport()
            continue
        rows = bronze.read_parquet(data, [layer.id_field, layer.link_field]).to_pylist()
        links = {r[layer.link_field] for r in rows if isinstance(r[layer.link_field], str)}
        day = layout.parse_partition_key(hour).date()
        gone = index.missing(links, day)
        bad = [r for r in rows if r[layer.link_field] in gone or not isinstance(r[layer.link_field], str)]
        examples = [{"id": r[layer.id_field], "contratacao": r[layer.link_field]} for r in bad[:10]]
        uncovered = index.uncovered(day) if bad else []
        if uncovered:
            named = [f"{uncovered[0]}", f"{uncovered[-1]}"] if len(uncovered) > 2 else [str(d) for d in uncovered]
            reports[hour] = LinkReport(len(rows), 0, examples, len(bad), named)
        else:
            reports[hour] = LinkReport(len(rows), len(bad), examples)
    return reports
