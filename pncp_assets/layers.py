"""The two Bronze layers fed by PNCP, and what makes each one: its prefix, the endpoint its sweeps read,
the key that lands once per day, the time that files a record in its hour, and its Parquet schema.

    pncp/           first-seen records  /publicacao   numeroControlePNCP   dataPublicacaoPncp
    pncp_versions/  every version seen  /atualizacao  _version_key         dataAtualizacaoGlobal

Both run the same commit protocol (`commit.py`) on the same key layout (`layout.py`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from pncp_assets import bronze, layout
from pncp_assets.pncp.client import ATUALIZACAO, PUBLICACAO
from pncp_assets.pncp.records import ID_KEY, VERSION_KEY, VERSION_TIME_FIELD, RecordKey, api_time


@dataclass(frozen=True)
class Layer:
    source: str  # the key prefix
    endpoint: str
    key: RecordKey
    time_field: str
    schema: pa.Schema
    noun: str  # what the key counts, in messages: "IDs", "versions"
    # Rows are versions. A version can be replaced by the next one before the next hourly run sees it, so
    # the hour that has just ended when a sweep starts takes every version the sweep shows, those of the
    # minutes since included (`DeltaCommitter.commit`).
    versioned: bool = False
    title: str = ""  # what the layer holds, for people: "first-seen records"

    def time_of(self, record: Any) -> dt.datetime | None:
        """The record's time in this layer (aware), or None when it is missing or unreadable."""
        return api_time(record.get(self.time_field)) if isinstance(record, dict) else None

    def to_table(self, records: Sequence[dict[str, Any]], **kwargs: Any) -> pa.Table:
        """Records (all accepted by `key.problem`) as a table of this layer's schema."""
        if self.versioned:
            kwargs["version_keys"] = [self.key.of(r) for r in records]
        return bronze.records_to_table(records, **kwargs)


FIRST_SEEN = Layer("pncp", PUBLICACAO, ID_KEY, "dataPublicacaoPncp", bronze.BRONZE_SCHEMA, "IDs",
                   title="first-seen records")
VERSIONS = Layer("pncp_versions", ATUALIZACAO, VERSION_KEY, VERSION_TIME_FIELD, bronze.VERSION_SCHEMA,
                 "versions", versioned=True, title="record versions")
LAYERS = (FIRST_SEEN, VERSIONS)


def layer_of(source: str) -> Layer:
    """The layer stored under `source`: `pncp_versions` holds versions; any other name holds first-seen
    records (the seed's rules) under that prefix."""
    if source == VERSIONS.source:
        return VERSIONS
    return FIRST_SEEN if source == FIRST_SEEN.source else dataclasses.replace(
        FIRST_SEEN, source=layout.validate_source(source))
