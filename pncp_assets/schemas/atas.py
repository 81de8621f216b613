"""An ata de registro de preço (`/v1/atas/atualizacao`, `AtaRegistroPrecoPeriodoDTO`): its 23 fields.

`numeroControlePNCPCompra` names the contratação it came from; an ata is cancelled (`cancelado`,
`dataCancelamento`) by a later version."""

from __future__ import annotations

import pyarrow as pa

from pncp_assets.schemas import TIMESTAMP, Fields

FIELDS: Fields = [
    ("numeroControlePNCPAta", pa.string()),
    ("numeroControlePNCPCompra", pa.string()),
    ("numeroAtaRegistroPreco", pa.string()),
    ("anoAta", pa.int64()),
    ("objetoContratacao", pa.string()),
    ("cancelado", pa.bool_()),
    ("dataCancelamento", TIMESTAMP),
    ("dataAssinatura", TIMESTAMP),
    ("vigenciaInicio", TIMESTAMP),
    ("vigenciaFim", TIMESTAMP),
    ("dataPublicacaoPncp", TIMESTAMP),
    ("dataInclusao", TIMESTAMP),
    ("dataAtualizacao", TIMESTAMP),
    ("dataAtualizacaoGlobal", TIMESTAMP),
    ("usuario", pa.string()),
    ("cnpjOrgao", pa.string()),
    ("nomeOrgao", pa.string()),
    ("codigoUnidadeOrgao", pa.string()),
    ("nomeUnidadeOrgao", pa.string()),
    ("cnpjOrgaoSubrogado", pa.string()),
    ("nomeOrgaoSubrogado", pa.string()),
    ("codigoUnidadeOrgaoSubrogado", pa.string()),
    ("nomeUnidadeOrgaoSubrogado", pa.string()),
]
TEXT_FIELDS: frozenset[str] = frozenset()
