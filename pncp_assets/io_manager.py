"""The Bronze Parquet IO manager: reads hourly deltas back for downstream assets.

It never writes: `pncp_new_records` publishes its own deltas as step 4 of the commit protocol
(`commit.py`), so swapping this IO manager for another cannot void exactly-once.
"""


import dagster as dg
import pyarrow as pa

from pncp_assets import bronze, layout
from pncp_assets.resources import BronzeStorage
from pncp_assets.storage import NotFound


class BronzeParquetIOManager(dg.ConfigurableIOManager):
    """Loads `pncp_new_records` for one hour or a range of hours as one table, in hour order, from
    `pncp/year=YYYY/month=MM/day=DD/pncp_YYYYMMDD_HH0000.parquet` (an hour without new records has no
    file and contributes no rows)."""

    storage: BronzeStorage
    source: str = "pncp"

    def handle_output(self, context: dg.OutputContext, obj: object) -> None:
        if obj is not None:
            raise TypeError("BronzeParquetIOManager only reads: pncp_new_records publishes its deltas itself "
                            "through the commit protocol")

    def load_input(self, context: dg.InputContext) -> pa.Table:
        store = self.storage.object_store()
        tables = []
        for hour in sorted(context.asset_partition_keys, key=layout.parse_partition_key):
            try:
                tables.append(bronze.read_parquet(store.get(layout.delta_key(self.source, hour)).data))
            except NotFound:
                continue
        return bronze.concat_tables(tables)
