"""The typed columns of each feed's records in Bronze, one module per feed (`contratacoes`, `contratos`,
`atas`), with the types seen live where the official spec is wrong (docs/PNCP_API.md). `bronze.py` turns
each into a Parquet schema with the ingestion columns (`_raw`, ...) and encodes records with it.

Timestamps carry no offset in the API and are Brasília time: `timestamp[ms, tz=America/Sao_Paulo]`.
Calendar dates (a contrato's signature and validity) are `date32`. Money is float64 (the API sends JSON
numbers, which every JSON reader parses as doubles)."""

from __future__ import annotations

import pyarrow as pa

TIMESTAMP = pa.timestamp("ms", tz="America/Sao_Paulo")
DATE = pa.date32()

Fields = list[tuple[str, pa.DataType]]

ORGAO = pa.struct([
    ("cnpj", pa.string()), ("razaoSocial", pa.string()), ("poderId", pa.string()), ("esferaId", pa.string()),
])
UNIDADE = pa.struct([
    ("ufNome", pa.string()), ("ufSigla", pa.string()), ("municipioNome", pa.string()),
    ("codigoUnidade", pa.string()), ("nomeUnidade", pa.string()), ("codigoIbge", pa.string()),
])
ID_NOME = pa.struct([("id", pa.int64()), ("nome", pa.string())])
