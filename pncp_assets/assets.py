"""The three assets of the Bronze graph and its checks: thin wiring over the domain layer."""


import datetime as dt
import os
from typing import Any

import dagster as dg

from pncp_assets import bronze
from pncp_assets.commit import CheckReport, CommitResult, DeltaCommitter
from pncp_assets.partitions import hourly_partitions
from pncp_assets.resources import BronzeStorage, PncpApi
from pncp_assets.sweeps import StoredSweep, SweepStore

GROUP = "bronze_pncp"
SOURCE = "pncp"

# Transient API trouble that outlasts the client's own retries (a long 429 block, a gateway outage)
# gets a fresh attempt of the step a few minutes later (PNCP_STEP_RETRIES, PNCP_STEP_RETRY_DELAY_S).
api_retry_policy = dg.RetryPolicy(
    max_retries=int(os.environ.get("PNCP_STEP_RETRIES", "2")),
    delay=float(os.environ.get("PNCP_STEP_RETRY_DELAY_S", "120")),
    backoff=dg.Backoff.EXPONENTIAL,
    jitter=dg.Jitter.PLUS_MINUS,
)


def previous_hour(asset: str) -> dg.AssetDep:
    """A dependency on the asset's own previous hour: an asset backfill then runs the hours in order,
    one run per hour holding all three assets (so every record of a past day is filed in its
    publication hour). Only ordering: nothing is loaded from it."""
    return dg.AssetDep(asset, partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=-1))


def _sweep_metadata(sweep: StoredSweep) -> dict[str, Any]:
    t = sweep.totals()
    return {
        "fetched": t["records_seen"],
        "distinct": t["distinct_ids"],
        "totalRegistros": t["total_registros"],
        "shortfall": t["shortfall"],
        "pages": t["pages"],
        "requests": t["requests"],
        "retries": t["retries"],
        "short_pages": t["short_pages_rerequested"],
        "sweep_reused": sweep.reused,
        "raw_key": dg.MetadataValue.path(sweep.key),
    }


@dg.asset(
    partitions_def=hourly_partitions,
    group_name=GROUP,
    retry_policy=api_retry_policy,
    deps=[previous_hour("pncp_raw_pages")],
    kinds={"python", "s3"},
    description="Every page of the PNCP sweep of day(H), as fetched, under pncp/_raw/. One recent sweep "
    "of a day serves all the hours it covers, so a backfill sweeps a finished day once.",
)
def pncp_raw_pages(context: dg.AssetExecutionContext, pncp_api: PncpApi,
                   bronze_storage: BronzeStorage) -> dg.MaterializeResult:
    sweeps = SweepStore(bronze_storage.object_store(), SOURCE, logger=context.log)
    sweep = sweeps.sweep_for(context.partition_key, pncp_api.client(context.log),
                             max_age=dt.timedelta(minutes=pncp_api.sweep_max_age_minutes))
    t = sweep.totals()
    if t["shortfall"]:
        context.log.warning(f"Sweep of {sweep.day} is short of totalRegistros by {t['shortfall']} records")
    return dg.MaterializeResult(metadata=_sweep_metadata(sweep))


def _preview(result: CommitResult, limit: int = 5) -> str:
    if result.output is None or not result.new_ids:
        return "(no new records)"
    new = set(result.new_ids)
    rows = [r for r in result.output.table.select(
        ["numeroControlePNCP", "modalidadeNome", "dataPublicacaoPncp", "valorTotalEstimado", "objetoCompra"]
    ).to_pylist() if r["numeroControlePNCP"] in new][:limit]
    lines = ["| numeroControlePNCP | modalidade | publicado | valor estimado | objeto |", "|---|---|---|---|---|"]
    for r in rows:
        objeto = (r["objetoCompra"] or "").replace("|", "/")[:60]
        published = r["dataPublicacaoPncp"].strftime("%Y-%m-%d %H:%M") if r["dataPublicacaoPncp"] else ""
        lines.append(f"| {r['numeroControlePNCP']} | {r['modalidadeNome']} | {published} | "
                     f"{r['valorTotalEstimado']} | {objeto} |")
    return "\n".join(lines)


def check_result(report: CheckReport, check_name: str) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=check_name,
        passed=report.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description="; ".join(report.problems) or "no duplicates; state agrees with Bronze",
        metadata={
            "delta_files": report.files,
            "delta_rows": report.delta_rows,
            "offending_ids": dg.MetadataValue.json(report.offending),
        },
    )


@dg.asset(
    partitions_def=hourly_partitions,
    group_name=GROUP,
    io_manager_key="bronze_io_manager",
    kinds={"python", "parquet"},
    deps=[pncp_raw_pages, previous_hour("pncp_new_records")],
    check_specs=[dg.AssetCheckSpec("no_duplicates", asset="pncp_new_records", blocking=True,
                                   partitions_def=hourly_partitions,
                                   description="No ID twice in H's delta, none in another delta of the day, "
                                   "and the state's IDs equal the day's Bronze IDs")],
    description="The Bronze delta of hour H: swept records published before the end of H that the day's "
    "state has never seen, plus what H already held. pncp/year=YYYY/month=MM/day=DD/pncp_YYYYMMDD_HH0000.parquet",
)
def pncp_new_records(context: dg.AssetExecutionContext, bronze_storage: BronzeStorage):
    partition = context.partition_key
    store = bronze_storage.object_store()
    sweep = SweepStore(store, SOURCE, logger=context.log).assigned(partition)
    committer = DeltaCommitter(store, SOURCE, logger=context.log)
    result = committer.commit(partition, sweep.records(), context.run.run_id)
    stats = result.stats
    rows = result.output.table.num_rows if result.output else result.held
    metadata: dict[str, Any] = {
        **_sweep_metadata(sweep),
        "status": result.status,
        "new": stats["new_records"],
        "held": result.held,
        "duplicates_filtered": stats["duplicates_filtered"],
        "filter_rate": stats["filter_rate"],
        "rejected": stats["rejected"],
        "bronze_key": dg.MetadataValue.path(result.key),
        "bytes": len(result.output.data) if result.output else 0,
        "dagster/row_count": rows,
        "preview": dg.MetadataValue.md(_preview(result)),
        "commit_attempts": result.attempts,
    }
    if result.reason:
        metadata["no_data"] = True
        metadata["no_data_reason"] = result.reason
    if result.rejected_key:
        metadata["rejected_key"] = dg.MetadataValue.path(result.rejected_key)
    yield dg.Output(result.output, metadata=metadata)
    yield check_result(committer.check(partition), "no_duplicates")


@dg.asset(
    partitions_def=hourly_partitions,
    group_name=GROUP,
    pool="pncp_state",
    deps=[pncp_new_records, previous_hour("pncp_daily_state")],
    kinds={"python", "json"},
    description="The day's state file (pncp/_state/...): H's claim confirmed once its delta is safely in "
    "Bronze, its staged file retired. One writer at a time (pool pncp_state); compare-and-swap regardless.",
)
def pncp_daily_state(context: dg.AssetExecutionContext, bronze_storage: BronzeStorage) -> dg.MaterializeResult:
    partition = context.partition_key
    summary = DeltaCommitter(bronze_storage.object_store(), SOURCE, logger=context.log).finalize(partition)
    day = bronze.parse_partition_key(partition).date()
    context.log.info(f"State {day}: {summary['total_processed']} processed in {summary['executions']} executions")
    return dg.MaterializeResult(metadata={
        "total_processed": summary["total_processed"],
        "executions": summary["executions"],
        "partitions_with_data": summary["partitions"],
        "orphans_removed": summary["orphans_removed"],
        "state_key": dg.MetadataValue.path(bronze.state_key(SOURCE, day)),
    })


@dg.asset_check(asset=pncp_new_records, name="bronze_consistent", partitions_def=hourly_partitions, blocking=True,
                description="The no_duplicates rules over Bronze as it is, without ingesting (job pncp_checks)")
def bronze_consistent(context: dg.AssetCheckExecutionContext, bronze_storage: BronzeStorage) -> dg.AssetCheckResult:
    committer = DeltaCommitter(bronze_storage.object_store(), SOURCE, logger=context.log)
    return check_result(committer.check(context.partition_key), "bronze_consistent")
