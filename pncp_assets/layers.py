"""The Bronze layers fed by PNCP, and what makes each one: its prefix, the endpoint its sweeps read (and
so the record's ID), whether its rows are versions, its record schema, and the contratação its records
point at.

    pncp/                     contratações, first seen    /v1/contratacoes/publicacao   numeroControlePNCP
    pncp_versions/            contratações, every version /v1/contratacoes/atualizacao  _version_key
    pncp_contratos/           contratos, first seen       /v1/contratos                 numeroControlePNCP
    pncp_contratos_versions/  contratos, every version    /v1/contratos/atualizacao     _version_key
    pncp_atas_versions/       atas, every version         /v1/atas/atualizacao          _version_key

A first-seen record is filed under the day and hour of its `dataPublicacaoPncp`; a version under those of
its `dataAtualizacaoGlobal`, keyed `ID@dataAtualizacaoGlobal`. (The atas have no first-seen layer:
`/v1/atas` filters on the validity period, not on publication; a new ata is its own first version.) All
run the same commit protocol (`commit.py`) on the same key layout (`layout.py`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from pncp_assets import bronze, layout
from pncp_assets.pncp.client import (
    ATAS_ATUALIZACAO,
    ATUALIZACAO,
    CONTRATOS_ATUALIZACAO,
    PUBLICACAO,
    Endpoint,
)
from pncp_assets.pncp.client import CONTRATOS as CONTRATOS_ENDPOINT
from pncp_assets.pncp.records import VERSION_TIME_FIELD, RecordKey, api_time, id_key, versions_key

PUBLICATION_FIELD = "dataPublicacaoPncp"


@dataclass(frozen=True)
class Layer:
    source: str  # the key prefix
    endpoint: Endpoint
    record: bronze.RecordSchema
    # Rows are versions. A version can be replaced by the next one before the next hourly run sees it, so
    # the hour that has just ended when a sweep starts takes every version the sweep shows, those of the
    # minutes since included (`DeltaCommitter.commit`).
    versioned: bool = False
    title: str = ""  # what the layer holds, for people: "contratos, every version"
    link_field: str | None = None  # the field naming the contratação a record belongs to

    @functools.cached_property
    def key(self) -> RecordKey:
        """What lands once per day: the record's ID, or for versions `ID@dataAtualizacaoGlobal`."""
        return versions_key(self.endpoint.id_rule) if self.versioned else id_key(self.endpoint.id_rule)

    @property
    def id_field(self) -> str:
        return self.endpoint.id_rule.field

    @property
    def time_field(self) -> str:
        """The time that files a record in its hour: its publication, or for a version its change."""
        return VERSION_TIME_FIELD if self.versioned else PUBLICATION_FIELD

    @property
    def schema(self) -> pa.Schema:
        return self.record.version_schema if self.versioned else self.record.schema

    @property
    def noun(self) -> str:  # what the key counts, in messages
        return "versions" if self.versioned else "IDs"

    def time_of(self, record: Any) -> dt.datetime | None:
        """The record's time in this layer (aware), or None when it is missing or unreadable."""
        return api_time(record.get(self.time_field)) if isinstance(record, dict) else None

    def to_table(self, records: Sequence[dict[str, Any]], **kwargs: Any) -> pa.Table:
        """Records (all accepted by `key.problem`) as a table of this layer's schema."""
        if self.versioned:
            kwargs["version_keys"] = [self.key.of(r) for r in records]
        return self.record.to_table(records, **kwargs)


FIRST_SEEN = Layer("pncp", PUBLICACAO, bronze.CONTRATACAO, title="contratações, first seen")
VERSIONS = Layer("pncp_versions", ATUALIZACAO, bronze.CONTRATACAO, versioned=True, title="contratações, every version")
CONTRATOS = Layer("pncp_contratos", CONTRATOS_ENDPOINT, bronze.CONTRATO, title="contratos, first seen",
                  link_field="numeroControlePncpCompra")
CONTRATOS_VERSIONS = Layer("pncp_contratos_versions", CONTRATOS_ATUALIZACAO, bronze.CONTRATO, versioned=True,
                           title="contratos, every version", link_field="numeroControlePncpCompra")
ATAS_VERSIONS = Layer("pncp_atas_versions", ATAS_ATUALIZACAO, bronze.ATA, versioned=True,
                      title="atas, every version", link_field="numeroControlePNCPCompra")
LAYERS = (FIRST_SEEN, VERSIONS, CONTRATOS, CONTRATOS_VERSIONS, ATAS_VERSIONS)
_BY_SOURCE = {layer.source: layer for layer in LAYERS}


def layer_of(source: str) -> Layer:
    """The layer stored under `source`; any other name holds first-seen contratações (the seed's rules)
    under that prefix."""
    return _BY_SOURCE.get(source) or dataclasses.replace(FIRST_SEEN, source=layout.validate_source(source))
