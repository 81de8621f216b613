"""The Bronze Parquet IO manager: reads hourly deltas back for downstream assets (either layer).

It never writes: `pncp_new_records` and `pncp_new_versions` publish their own deltas as step 4 of the commit protocol
(`commit.py`), so swapping this IO manager for another cannot void exactly-once.
"""


import dagster as dg
import pyarrow as pa

from pncp_assets import bronze, layout
from pncp_assets.layers import layer_of
from pncp_assets.resources import BronzeStorage
from pncp_assets.storage import NotFound

SOURCE_METADATA = "pncp/source"  # on a delta asset: the Bronze prefix it is read from


class BronzeParquetIOManager(dg.ConfigurableIOManager):
    """Loads `pncp_new_records` (or `pncp_new_versions`) for one hour or a range of hours as one table, in
    hour order, from `pncp/year=YYYY/month=MM/day=DD/pncp_YYYYMMDD_HH0000.parquet` (or its `pncp_versions/`
    twin; an hour without new rows has no file and contributes none). The prefix comes from the upstream
    asset's `pncp/source` metadata; `source` is the default."""

    storage: BronzeStorage
    source: str = "pncp"

    def handle_output(self, context: dg.OutputContext, obj: object) -> None:
        if obj is not None:
            raise TypeError("BronzeParquetIOManager only reads: pncp_new_records publishes its deltas itself "
                            "through the commit protocol")

    def load_input(self, context: dg.InputContext) -> pa.Table:
        store = self.storage.object_store()
        upstream = context.upstream_output.definition_metadata if context.upstream_output else {}
        layer = layer_of(str(upstream.get(SOURCE_METADATA, self.source)))
        tables = []
        for hour in sorted(context.asset_partition_keys, key=layout.parse_partition_key):
            try:
                tables.append(bronze.read_parquet(store.get(layout.delta_key(layer.source, hour)).data))
            except NotFound:
                continue
        return bronze.concat_tables(tables, layer.schema)
