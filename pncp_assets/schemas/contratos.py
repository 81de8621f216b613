"""A contrato (`/v1/contratos` and `/v1/contratos/atualizacao`, `RecuperarContratoDTO`): its 37 fields.

`numeroControlePncpCompra` names the contratação it came from; `valorGlobal`, `numeroRetificacao` and
`dataVigenciaFim` change with amendments. Signature and validity are calendar dates."""

from __future__ import annotations

import pyarrow as pa

from pncp_assets.schemas import DATE, ID_NOME, ORGAO, TIMESTAMP, UNIDADE, Fields

FIELDS: Fields = [
    ("numeroControlePNCP", pa.string()),
    ("numeroControlePncpCompra", pa.string()),
    ("anoContrato", pa.int64()),
    ("sequencialContrato", pa.int64()),
    ("numeroContratoEmpenho", pa.string()),
    ("tipoContrato", ID_NOME),
    ("categoriaProcesso", ID_NOME),
    ("processo", pa.string()),
    ("objetoContrato", pa.string()),
    ("informacaoComplementar", pa.string()),
    ("orgaoEntidade", ORGAO),
    ("unidadeOrgao", UNIDADE),
    ("orgaoSubRogado", ORGAO),
    ("unidadeSubRogada", UNIDADE),
    ("tipoPessoa", pa.string()),
    ("niFornecedor", pa.string()),
    ("nomeRazaoSocialFornecedor", pa.string()),
    ("codigoPaisFornecedor", pa.string()),
    ("tipoPessoaSubContratada", pa.string()),
    ("niFornecedorSubContratado", pa.string()),
    ("nomeFornecedorSubContratado", pa.string()),
    ("receita", pa.bool_()),
    ("valorInicial", pa.float64()),
    ("valorParcela", pa.float64()),
    ("numeroParcelas", pa.int64()),
    ("valorGlobal", pa.float64()),
    ("valorAcumulado", pa.float64()),
    ("numeroRetificacao", pa.int64()),
    ("dataAssinatura", DATE),
    ("dataVigenciaInicio", DATE),
    ("dataVigenciaFim", DATE),
    ("dataPublicacaoPncp", TIMESTAMP),
    ("dataAtualizacao", TIMESTAMP),
    ("dataAtualizacaoGlobal", TIMESTAMP),
    ("identificadorCipi", pa.string()),
    ("urlCipi", pa.string()),
    ("usuarioNome", pa.string()),
]
TEXT_FIELDS: frozenset[str] = frozenset()
