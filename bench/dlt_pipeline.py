"""The day by dlt, for bench/bench_run_cost.py: `python bench/dlt_pipeline.py API_URL DAY OUT_DIR`.

One whole-day sweep of /v1/contratacoes/publicacao (every modalidade, every page) by dlt's rest_api
source into its filesystem destination as Parquet, appended: what a dlt user writes first. Runs with
any Python that has `dlt[parquet]` (it needs nothing of this project).
"""

import sys
from pathlib import Path

import dlt
from dlt.sources.rest_api import rest_api_source

MODALIDADES = range(1, 20)


def main(api: str, day: str, out: Path) -> None:
    compact = day.replace("-", "")
    source = rest_api_source({
        "client": {"base_url": f"{api}/v1/",
                   "paginator": {"type": "page_number", "page_param": "pagina", "base_page": 1,
                                 "total_path": "totalPaginas"}},
        "resource_defaults": {"write_disposition": "append", "table_name": "contratacoes"},
        "resources": [{"name": f"modalidade_{m}",
                       "endpoint": {"path": "contratacoes/publicacao", "data_selector": "data",
                                    "params": {"dataInicial": compact, "dataFinal": compact,
                                               "codigoModalidadeContratacao": m, "tamanhoPagina": 50},
                                    # PNCP answers 204 where a modalidade published nothing that day.
                                    "response_actions": [{"status_code": 204, "action": "ignore"}]}}
                      for m in MODALIDADES],
    })
    pipeline = dlt.pipeline("pncp_bench", pipelines_dir=str(out / ".dlt"), dataset_name="bronze",
                            destination=dlt.destinations.filesystem(bucket_url=(out / "files").as_uri()))
    pipeline.run(source, loader_file_format="parquet")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], Path(sys.argv[3]))
