"""A contratação (`/v1/contratacoes/publicacao` and `/atualizacao`): its 35 documented fields."""

from __future__ import annotations

import pyarrow as pa

from pncp_assets.schemas import ORGAO, TIMESTAMP, UNIDADE, Fields

AMPARO = pa.struct([("codigo", pa.int64()), ("nome", pa.string()), ("descricao", pa.string())])
FONTE = pa.struct([
    ("codigo", pa.int64()), ("nome", pa.string()), ("descricao", pa.string()), ("dataInclusao", TIMESTAMP),
])

# The 35 documented fields, in the API's usual order, with the types seen live (docs/PNCP_API.md).
FIELDS: Fields = [
    ("numeroControlePNCP", pa.string()),
    ("srp", pa.bool_()),
    ("orgaoEntidade", ORGAO),
    ("anoCompra", pa.int64()),
    ("sequencialCompra", pa.int64()),
    ("dataInclusao", TIMESTAMP),
    ("dataPublicacaoPncp", TIMESTAMP),
    ("dataAtualizacao", TIMESTAMP),
    ("dataAtualizacaoGlobal", TIMESTAMP),
    ("numeroCompra", pa.string()),
    ("unidadeOrgao", UNIDADE),
    ("amparoLegal", AMPARO),
    ("dataAberturaProposta", TIMESTAMP),
    ("dataEncerramentoProposta", TIMESTAMP),
    ("informacaoComplementar", pa.string()),
    ("processo", pa.string()),
    ("objetoCompra", pa.string()),
    ("linkSistemaOrigem", pa.string()),
    ("linkProcessoEletronico", pa.string()),
    ("justificativaPresencial", pa.string()),
    ("unidadeSubRogada", UNIDADE),
    ("orgaoSubRogado", ORGAO),
    ("valorTotalEstimado", pa.float64()),
    ("valorTotalHomologado", pa.float64()),
    ("modalidadeId", pa.int64()),
    ("modalidadeNome", pa.string()),
    ("modoDisputaId", pa.int64()),
    ("modoDisputaNome", pa.string()),
    ("tipoInstrumentoConvocatorioCodigo", pa.int64()),
    ("tipoInstrumentoConvocatorioNome", pa.string()),
    ("situacaoCompraId", pa.int64()),
    ("situacaoCompraNome", pa.string()),
    ("usuarioNome", pa.string()),
    ("fontesOrcamentarias", pa.list_(FONTE)),
    # Newer and always null in the samples: its type is unknown, so any JSON scalar is kept as text.
    ("emendaParlamentar", pa.string()),
]
# Fields of unknown type (any JSON scalar is kept as text).
TEXT_FIELDS = frozenset({"emendaParlamentar"})
