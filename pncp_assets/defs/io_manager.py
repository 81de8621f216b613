"""The Bronze Parquet IO manager: it persists the hourly deltas (step 4 of the commit protocol) and reads
them back for downstream assets, for either layer.

Who writes what: the delta assets (`pncp_new_records` and every layer's twin) decide what each hour holds and
claim it in the day's state, with the delta staged (steps 1-3, `commit.py`); they return those claimed
deltas (`Deltas`), and this IO manager publishes each hour's at its key under the protocol's rule (only
ever replacing a file whose IDs it holds). Swapping it for another IO manager cannot void exactly-once:
nothing is then published by the run, the delta asset's blocking `no_duplicates` check, which judges what
is in Bronze after the output, fails the run, and the claims are rolled forward from their staged files by
the next run or by the state asset (`DeltaCommitter.recover`).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import dagster as dg
import pyarrow as pa

from pncp_assets import bronze, layout
from pncp_assets.commit import DeltaCommitter, Deltas
from pncp_assets.defs.resources import BronzeStorage
from pncp_assets.layers import FIRST_SEEN, layer_named
from pncp_assets.storage import NotFound

SOURCE_METADATA = "pncp/source"  # on a delta asset: the Bronze prefix it is read from


class BronzeParquetIOManager(dg.ConfigurableIOManager):
    """Publishes a delta asset's `Deltas` (one hour, or each hour of a range at its own key) to its layer's
    key (`layout.delta_key`: `pncp/year=YYYY/month=MM/day=DD/pncp_YYYYMMDD_HH0000.parquet` and twins), reporting
    each hour's `bronze_key`, `dagster/row_count`, `bytes` and `published` (written, or kept: the file
    already held them) as that hour's materialisation metadata. Loads one hour or a range as one table, in
    hour order (an hour without new rows has no file and contributes none); the prefix comes from the
    upstream asset's `pncp/source` metadata (a registry layer's name), `source` being the default."""

    storage: BronzeStorage
    source: str = FIRST_SEEN.source

    def handle_output(self, context: dg.OutputContext, obj: Deltas) -> None:
        if not isinstance(obj, Deltas):
            raise TypeError(f"BronzeParquetIOManager stores the deltas the delta assets return (`Deltas`), "
                            f"not a {type(obj).__name__}")
        committer = DeltaCommitter(self.storage.object_store(), obj.layer, logger=context.log)
        outcomes: Counter[str] = Counter()
        total_rows = total_bytes = 0
        for hour, output in sorted(obj.by_hour.items(), key=lambda item: layout.parse_partition_key(item[0])):
            try:
                outcome = committer.publish(output)
            except Exception as exc:
                # Not raised: the blocking check that follows judges Bronze as it now is, fails this hour
                # (and so the run) naming what is missing; the claim is rolled forward later.
                context.log.error(f"Bronze delta {output.key}: not published ({type(exc).__name__}: {exc})")
                outcome = "failed"
            rows, size = output.table.num_rows, len(output.data)
            outcomes[outcome] += 1
            total_rows, total_bytes = total_rows + rows, total_bytes + size
            _report(context, hour, {"bronze_key": dg.MetadataValue.path(output.key), "dagster/row_count": rows,
                                    "bytes": size, "published": outcome})
        # One line per output, not per hour (each is an event-log write); each hour is in its own metadata.
        if len(obj.by_hour) == 1:
            context.log.info(f"Bronze delta {output.key}: {outcome} ({total_rows} rows, {total_bytes} bytes)")
        elif obj.by_hour:
            counts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(outcomes.items()))
            context.log.info(f"Bronze deltas of {len(obj.by_hour)} hours ({obj.layer.source}): {counts} "
                             f"({total_rows} rows, {total_bytes} bytes)")

    def load_input(self, context: dg.InputContext) -> pa.Table:
        store = self.storage.object_store()
        upstream = context.upstream_output.definition_metadata if context.upstream_output else {}
        layer = layer_named(str(upstream.get(SOURCE_METADATA, self.source)))
        tables = []
        for hour in sorted(context.asset_partition_keys, key=layout.parse_partition_key):
            try:
                tables.append(bronze.read_parquet(store.get(layout.delta_key(layer.source, hour)).data))
            except NotFound:
                continue
        return bronze.concat_tables(tables, layer.schema)


def _report(context: dg.OutputContext, hour: str, metadata: dict[str, Any]) -> None:
    """The hour's own materialisation metadata. An output covering a range of hours gets one materialisation
    per hour, and only the step's per-partition metadata reaches each of them (output metadata is shared by
    all), so it goes through the step; outside a step (`build_output_context`), as output metadata."""
    try:
        step = context.step_context
    except dg.DagsterInvariantViolationError:
        context.add_output_metadata({f"{hour} {k}": v for k, v in metadata.items()})
        return
    step.add_asset_metadata(metadata, partition_key=hour)
