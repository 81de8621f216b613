"""The feed registry: every Bronze layer fed by PNCP, each declared once, with all that makes it.

    layer (prefix)            feed          rows           endpoint                      key
    pncp/                     contratacoes  first seen     /v1/contratacoes/publicacao   numeroControlePNCP
    pncp_versions/            contratacoes  every version  /v1/contratacoes/atualizacao  _version_key
    pncp_contratos/           contratos     first seen     /v1/contratos                 numeroControlePNCP
    pncp_contratos_versions/  contratos     every version  /v1/contratos/atualizacao     _version_key
    pncp_atas_versions/       atas          every version  /v1/atas/atualizacao          _version_key

A declaration (`Layer`) names the layer's prefix, its feed (the layers holding one kind of record: the current
views join them), the endpoint its sweeps read (with the record's ID rule and page size), its record schema
(`schemas/` fields as a `bronze.RecordSchema`), whether its rows are versions, the columns an operator sees
first, and the field naming the contratação a record belongs to. Everything else is derived from `LAYERS`:
the client sweeps the layer's endpoint, `defs/assets.py` names and builds its assets (`AssetNames`), the
current views group layers by feed, the commands offer the layers' names. A declaration missing a part
fails when this module loads (`FeedError`, naming the layer and the part). docs/DESIGN.md "Adding a feed".

A first-seen record is filed under the day and hour of its `dataPublicacaoPncp`; a version under those of
its `dataAtualizacaoGlobal`, keyed `ID@dataAtualizacaoGlobal`. (The atas have no first-seen layer:
`/v1/atas` filters on the validity period, not on publication; a new ata is its own first version.) All
run the same commit protocol (`commit.py`) on the same key layout (`layout.py`).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from pncp_assets import bronze, layout
from pncp_assets.pncp.client import Endpoint
from pncp_assets.pncp.records import (
    CONTRATACAO_ID,
    VERSION_TIME_FIELD,
    RecordKey,
    any_id,
    api_time,
    id_key,
    versions_key,
)
from pncp_assets.schemas import atas, contratacoes, contratos

PUBLICATION_FIELD = "dataPublicacaoPncp"


class FeedError(ValueError):
    """A layer declared without one of its parts, or a name that is no layer's."""


@dataclass(frozen=True)
class Layer:
    source: str  # the key prefix, and the stem of its asset names (`defs/assets.AssetNames`)
    feed: str  # the kind of record, shared by a feed's first-seen and versions layers: "contratos"
    endpoint: Endpoint
    record: bronze.RecordSchema
    title: str  # what the layer holds, for people: "contratos, every version"
    preview: tuple[tuple[str, str], ...]  # (column, header): what an operator wants to see first of new rows
    # Rows are versions. A version can be replaced by the next one before the next hourly run sees it, so
    # the hour that has just ended when a sweep starts takes every version the sweep shows, those of the
    # minutes since included (`DeltaCommitter.commit`).
    versioned: bool = False
    link_field: str | None = None  # the field naming the contratação a record belongs to
    # The field whose time files a record in its hour: by default its publication (`dataPublicacaoPncp`), or
    # for versions its change (`dataAtualizacaoGlobal`, which the version key holds too).
    filed_by: str | None = None

    def __post_init__(self) -> None:
        def need(ok: bool, part: str) -> None:
            if not ok:
                raise FeedError(f"layer {self.source!r} (feed {self.feed!r}): {part}")

        need(isinstance(self.source, str) and layout.SOURCE.fullmatch(self.source) is not None,
             "source must be a lowercase prefix like 'pncp_contratos' (a-z, 0-9, _)")
        need(isinstance(self.feed, str) and layout.SOURCE.fullmatch(self.feed) is not None,
             "feed must be a lowercase name like 'contratos'")
        need(isinstance(self.endpoint, Endpoint), "endpoint must be a pncp.client.Endpoint")
        need(isinstance(self.record, bronze.RecordSchema), "record must be a bronze.RecordSchema")
        need(isinstance(self.title, str) and bool(self.title.strip()), "title is missing")
        columns = set(self.schema.names)
        need(self.id_field in columns, f"its record schema has no column {self.id_field} (the endpoint's ID)")
        need(self.time_field in columns, f"its record schema has no column {self.time_field} (the filing time)")
        need(bool(self.preview), "preview columns are missing")
        for column, header in self.preview:
            need(column in columns and bool(header), f"preview column {column!r} is not in its record schema")
        need(self.link_field is None or self.link_field in columns,
             f"link_field {self.link_field!r} is not in its record schema")
        need(not self.versioned or self.filed_by in (None, VERSION_TIME_FIELD),
             f"versions are filed by {VERSION_TIME_FIELD}, the time in their key, not {self.filed_by!r}")

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
        return self.filed_by or (VERSION_TIME_FIELD if self.versioned else PUBLICATION_FIELD)

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


# --- The declarations ----------------------------------------------------------------------------

CONTRATACAO = bronze.RecordSchema("contratacao", contratacoes.FIELDS, contratacoes.TEXT_FIELDS)
CONTRATO = bronze.RecordSchema("contrato", contratos.FIELDS, contratos.TEXT_FIELDS)
ATA = bronze.RecordSchema("ata", atas.FIELDS, atas.TEXT_FIELDS)
CONTRATO_ID = any_id("numeroControlePNCP")  # reported as {CNPJ}-2-{seq}/{year}; not documented
ATA_ID = any_id("numeroControlePNCPAta")
_CONTRATO = (("numeroControlePNCP", "numeroControlePNCP"), ("numeroControlePncpCompra", "contratação"))

# The live API refuses contratação pages over 50 (its old manual's 500 is wrong); contratos and atas take
# no modalidade and pages up to 500. The plain /v1/atas filters on the validity period: not incremental.
FIRST_SEEN = Layer(
    "pncp", "contratacoes", Endpoint("/v1/contratacoes/publicacao", CONTRATACAO_ID), CONTRATACAO,
    "contratações, first seen",
    (("numeroControlePNCP", "numeroControlePNCP"), ("modalidadeNome", "modalidade"),
     ("dataPublicacaoPncp", "publicado"), ("valorTotalEstimado", "valor estimado"), ("objetoCompra", "objeto")))
VERSIONS = Layer(
    "pncp_versions", "contratacoes", Endpoint("/v1/contratacoes/atualizacao", CONTRATACAO_ID), CONTRATACAO,
    "contratações, every version",
    (("numeroControlePNCP", "numeroControlePNCP"), ("dataAtualizacaoGlobal", "atualizado"),
     ("situacaoCompraNome", "situação"), ("valorTotalHomologado", "valor homologado"), ("objetoCompra", "objeto")),
    versioned=True)
CONTRATOS = Layer(
    "pncp_contratos", "contratos", Endpoint("/v1/contratos", CONTRATO_ID, by_modalidade=False, page_size=500),
    CONTRATO, "contratos, first seen",
    (*_CONTRATO, ("nomeRazaoSocialFornecedor", "fornecedor"), ("valorGlobal", "valor global"),
     ("objetoContrato", "objeto")),
    link_field="numeroControlePncpCompra")
CONTRATOS_VERSIONS = Layer(
    "pncp_contratos_versions", "contratos",
    Endpoint("/v1/contratos/atualizacao", CONTRATO_ID, by_modalidade=False, page_size=500),
    CONTRATO, "contratos, every version",
    (*_CONTRATO, ("dataAtualizacaoGlobal", "atualizado"), ("numeroRetificacao", "retificação"),
     ("valorGlobal", "valor global")),
    versioned=True, link_field="numeroControlePncpCompra")
ATAS_VERSIONS = Layer(
    "pncp_atas_versions", "atas", Endpoint("/v1/atas/atualizacao", ATA_ID, by_modalidade=False, page_size=500),
    ATA, "atas, every version",
    (("numeroControlePNCPAta", "numeroControlePNCPAta"), ("numeroControlePNCPCompra", "contratação"),
     ("dataAtualizacaoGlobal", "atualizado"), ("cancelado", "cancelada"), ("objetoContratacao", "objeto")),
    versioned=True, link_field="numeroControlePNCPCompra")

LAYERS: tuple[Layer, ...] = (FIRST_SEEN, VERSIONS, CONTRATOS, CONTRATOS_VERSIONS, ATAS_VERSIONS)
LINKED_FEED = FIRST_SEEN.feed  # a `link_field` names a record of this feed


def check_registry(layers: Iterable[Layer]) -> tuple[Layer, ...]:
    """`layers` as a registry: each a `Layer`, no prefix or endpoint twice, at most one first-seen and one
    versions layer per feed. `FeedError` naming the layer otherwise."""
    layers = tuple(layers)
    seen: dict[Any, str] = {}
    for layer in layers:
        if not isinstance(layer, Layer):
            raise FeedError(f"{layer!r} is not a Layer")
        for part in (("source", layer.source), ("endpoint", layer.endpoint.path),
                     ("feed rows", layer.feed, layer.versioned)):
            if part in seen:
                raise FeedError(f"layer {layer.source!r}: its {part[0]} {part[1:]} is also layer {seen[part]!r}'s")
            seen[part] = layer.source
    return layers


check_registry(LAYERS)


def layer_named(name: str, layers: Iterable[Layer] = LAYERS) -> Layer:
    """The layer whose prefix is `name`; `FeedError` listing the layers for any other name (a typo in a
    command, the environment or code never becomes a layer of its own)."""
    for layer in layers:
        if layer.source == name:
            return layer
    raise FeedError(f"no layer {name!r}: use one of {', '.join(layer.source for layer in layers)}")


def as_layer(layer: Layer | str) -> Layer:
    """A layer, or the registry's layer of that name (where a name enters: a command, a caller's string)."""
    return layer if isinstance(layer, Layer) else layer_named(layer)


def feeds(layers: Iterable[Layer] = LAYERS) -> dict[str, tuple[Layer, ...]]:
    """Each feed's layers, first seen before versions, in registry order."""
    grouped: dict[str, list[Layer]] = {}
    for layer in layers:
        grouped.setdefault(layer.feed, []).append(layer)
    return {feed: tuple(sorted(group, key=lambda layer: layer.versioned)) for feed, group in grouped.items()}


def first_seen_of(layer: Layer, layers: Iterable[Layer] = LAYERS) -> Layer | None:
    """The first-seen layer of `layer`'s feed (itself, for a first-seen layer); None for a feed without one."""
    registry = tuple(layers)
    group = feeds(registry if layer in registry else (*registry, layer))[layer.feed]
    return next((other for other in group if not other.versioned), None)


def linked_layers(layers: Iterable[Layer] = LAYERS) -> tuple[Layer, ...]:
    """The layers that hold the contratações a `link_field` points at."""
    return feeds(layers)[LINKED_FEED]
