"""The Bronze Parquet IO manager: publishes a partition's delta at its key, and reads it back."""


import dagster as dg
import pyarrow as pa

from pncp_assets import bronze
from pncp_assets.commit import DeltaCommitter, DeltaOutput
from pncp_assets.resources import BronzeStorage
from pncp_assets.storage import NotFound


class BronzeParquetIOManager(dg.ConfigurableIOManager):
    """Stores `pncp_new_records[H]` at `pncp/year=YYYY/month=MM/day=DD/pncp_YYYYMMDD_HH0000.parquet`.

    Writes replace a file in one atomic PUT, and only a file whose IDs the new one contains: a
    partition never shrinks, even when a stale run publishes late. No output (no new records): no file.
    """

    storage: BronzeStorage
    source: str = "pncp"

    def handle_output(self, context: dg.OutputContext, obj: DeltaOutput | None) -> None:
        if obj is None:
            return
        if obj.key != bronze.delta_key(self.source, context.partition_key):
            raise ValueError(f"delta for {obj.partition_key} handed to partition {context.partition_key}")
        outcome = DeltaCommitter(self.storage.object_store(), self.source, logger=context.log).publish(obj)
        context.log.info(f"Bronze delta {obj.key}: {outcome} ({obj.table.num_rows} rows, {len(obj.data)} bytes)")

    def load_input(self, context: dg.InputContext) -> pa.Table:
        key = bronze.delta_key(self.source, context.asset_partition_key)
        try:
            return bronze.read_parquet(self.storage.object_store().get(key).data)
        except NotFound:
            return bronze.BRONZE_SCHEMA.empty_table()  # an hour without new records has no file
