"""The three assets of the Bronze graph and its checks: thin wiring over the domain layer.

Every asset takes a range of hours (`context.partition_keys`): a single hour from the schedule, or up
to a day from a backfill (`BACKFILL_POLICY`), processed in time order, with one sweep per day. Each
hour still gets its own materialisation, metadata and check verdict.
"""

from collections.abc import Iterator
from typing import Any

import dagster as dg

from pncp_assets import layout
from pncp_assets.commit import CheckReport, CommitResult, DeltaCommitter
from pncp_assets.partitions import hourly_partitions
from pncp_assets.pncp.client import PncpRequestError
from pncp_assets.resources import BronzeStorage, PncpApi
from pncp_assets.sweeps import StoredSweep, SweepStore

GROUP = "bronze_pncp"
SOURCE = "pncp"
API_POOL = "pncp_api"  # every run that talks to PNCP: one budget for the whole instance
STATE_POOL = "pncp_state"

# A backfill launches one run per 24 hours (a day, when it starts at 00:00), all three assets in it:
# a month from the UI is about 30 runs, not 2,000, and each day is swept once.
BACKFILL_POLICY = dg.BackfillPolicy.multi_run(max_partitions_per_run=24)



def _sweep_metadata(sweep: StoredSweep) -> dict[str, Any]:
    """What it cost to fetch the sweep that served an hour: nothing, when a stored sweep was reused."""
    t = sweep.totals()
    fetched = not sweep.reused
    return {
        "requests": t["requests"] if fetched else 0,
        "retries": t["retries"] if fetched else 0,
        "short_pages": t["short_pages_rerequested"] if fetched else 0,
        "pages": t["pages"],
        "distinct": t["distinct_ids"],
        "totalRegistros": t["total_registros"],
        "shortfall": t["shortfall"],
        "sweep_reused": sweep.reused,
        "raw_key": dg.MetadataValue.path(sweep.key),
    }


@dg.asset(
    partitions_def=hourly_partitions,
    backfill_policy=BACKFILL_POLICY,
    group_name=GROUP,
    pool=API_POOL,
    kinds={"python", "s3"},
    description="Every page of the PNCP sweep of day(H), as fetched, under pncp/_raw/. One sweep per day "
    "serves all the hours of a run, and a recent sweep serves later runs. Holds the pncp_api pool: no two "
    "runs ever talk to PNCP at once.",
)
def pncp_raw_pages(context: dg.AssetExecutionContext, pncp_api: PncpApi,
                   bronze_storage: BronzeStorage) -> dg.MaterializeResult:
    sweeps = SweepStore(bronze_storage.object_store(), SOURCE, logger=context.log)
    client = pncp_api.client(context.log)
    try:
        served = sweeps.sweep_hours(context.partition_keys, client, max_age=pncp_api.sweep_max_age)
    except PncpRequestError:
        raise  # the API refused the request itself (400/422): trying again cannot help
    except Exception as exc:
        # Trouble that outlasted the client's own retries (a long 429 block, a gateway outage): Dagster
        # runs the step again later, with the delays of the PncpApi resource (in every kind of run).
        if context.retry_number >= pncp_api.step_retries:
            raise  # no step retry left: the run fails with the sweep's own error
        wait = pncp_api.retry_wait_s(context.retry_number)
        context.log.warning(f"Sweep failed ({type(exc).__name__}: {str(exc)[:200]}); step retry "
                            f"{context.retry_number + 1} of {pncp_api.step_retries} in {wait:.1f} s")
        raise dg.RetryRequested(max_retries=pncp_api.step_retries, seconds_to_wait=wait) from exc
    finally:
        # The pool passes to the next run only a full interval after our last request (none: no wait).
        client.wait_out_interval()
    for hour, sweep in served.items():
        context.add_asset_metadata(_sweep_metadata(sweep), partition_key=hour)
        if not sweep.reused and sweep.totals()["shortfall"]:
            context.log.warning(f"Sweep of {sweep.day} is short of totalRegistros by "
                                f"{sweep.totals()['shortfall']} records")
    return dg.MaterializeResult()


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


def _delta_metadata(result: CommitResult) -> dict[str, Any]:
    """Per hour: what was filed and why the rest was not. Few numbers, each worth a plot."""
    stats = result.stats
    metadata: dict[str, Any] = {
        "new": stats["new_records"],
        "late": result.late,
        "already_in_bronze": stats["already_processed"],
        "rejected": stats["rejected"],
        "filter_rate": result.filter_rate,
        "commit_attempts": result.attempts,  # above 1: other runs of the day committed first
        "dagster/row_count": result.output.table.num_rows if result.output else result.held,
        "bytes": len(result.output.data) if result.output else 0,
        "status": result.status,
        "bronze_key": dg.MetadataValue.path(result.key),
        "preview": dg.MetadataValue.md(_preview(result)),
    }
    if result.reason:
        metadata["no_data_reason"] = result.reason
    if result.rejected_key:
        metadata["rejected_key"] = dg.MetadataValue.path(result.rejected_key)
    return metadata


def _verdict(report: CheckReport) -> dict[str, Any]:
    return {
        "passed": report.passed,
        "severity": dg.AssetCheckSeverity.ERROR,
        "description": "; ".join(report.problems) or "no duplicates; state agrees with Bronze",
        "metadata": {"delta_files": report.files, "delta_rows": report.delta_rows,
                     "offending_ids": dg.MetadataValue.json(report.offending)},
    }


def check_evaluation(report: CheckReport, check_name: str, partition_key: str) -> dg.AssetCheckEvaluation:
    """A check verdict for one hour. An `AssetCheckEvaluation` names its partition itself, so a run over a
    range of hours still records one verdict per hour (an `AssetCheckResult` from a range run is recorded
    without a partition in Dagster 1.13)."""
    return dg.AssetCheckEvaluation(asset_key=dg.AssetKey("pncp_new_records"), check_name=check_name,
                                   blocking=True, partition=partition_key, **_verdict(report))


@dg.asset(
    partitions_def=hourly_partitions,
    backfill_policy=BACKFILL_POLICY,
    group_name=GROUP,
    io_manager_key="bronze_io_manager",  # reads the deltas back for downstream assets; writing is ours
    kinds={"python", "parquet"},
    deps=[pncp_raw_pages],
    check_specs=[dg.AssetCheckSpec("no_duplicates", asset="pncp_new_records", blocking=True,
                                   partitions_def=hourly_partitions,
                                   description="No ID twice in H's delta, none in another delta of the day, "
                                   "and the state's IDs equal the day's Bronze IDs")],
    description="The Bronze delta of hour H: swept records published before the end of H that the day's "
    "state has never seen, plus what H already held. pncp/year=YYYY/month=MM/day=DD/pncp_YYYYMMDD_HH0000.parquet",
)
def pncp_new_records(context: dg.AssetExecutionContext, bronze_storage: BronzeStorage) -> Iterator[Any]:
    store = bronze_storage.object_store()
    sweeps = SweepStore(store, SOURCE, logger=context.log)
    committer = DeltaCommitter(store, SOURCE, logger=context.log, compression=bronze_storage.compression)
    hours = sorted(context.partition_keys, key=layout.parse_partition_key)  # in order: records in their hour
    for hour in hours:
        result = committer.commit(hour, sweeps.assigned(hour).records(), context.run.run_id)
        if result.output is not None:
            # Step 4 of the commit protocol: publish the claimed delta at H's key (see commit.py).
            outcome = committer.publish(result.output)
            context.log.info(f"Bronze delta {result.key}: {outcome} ({result.output.table.num_rows} rows, "
                             f"{len(result.output.data)} bytes)")
        context.add_asset_metadata(_delta_metadata(result), partition_key=hour)
    yield dg.MaterializeResult()
    for hour, report in committer.check_hours(hours).items():
        yield check_evaluation(report, "no_duplicates", hour)
    yield _check_done(context.op_execution_context, "no_duplicates")


def _check_done(context: dg.OpExecutionContext, check_name: str) -> dg.Output:
    """The check's own (valueless) output, which Dagster expects once per step; the verdicts themselves
    went out as one `AssetCheckEvaluation` per hour."""
    specs = context.assets_def.check_specs_by_output_name
    return dg.Output(None, output_name=next(n for n, spec in specs.items() if spec.name == check_name))


@dg.asset(
    partitions_def=hourly_partitions,
    backfill_policy=BACKFILL_POLICY,
    group_name=GROUP,
    pool=STATE_POOL,
    deps=[pncp_new_records],
    kinds={"python", "json"},
    description="The day's state file (pncp/_state/...): H's claim confirmed once its delta is safely in "
    "Bronze, its staged file retired. One writer at a time (pool pncp_state); compare-and-swap regardless.",
)
def pncp_daily_state(context: dg.AssetExecutionContext, bronze_storage: BronzeStorage) -> dg.MaterializeResult:
    committer = DeltaCommitter(bronze_storage.object_store(), SOURCE, logger=context.log)
    for day, summary in committer.finalize_hours(context.partition_keys).items():
        context.log.info(f"State {day}: {summary['total_processed']} processed in {summary['executions']} "
                         f"executions")
        for hour, ids in summary["hour_ids"].items():
            context.add_asset_metadata({
                "hour_ids": ids,
                "day_total_processed": summary["total_processed"],
                "executions": summary["executions"],
                "orphans_removed": summary["orphans_removed"],
                "state_key": dg.MetadataValue.path(layout.state_key(SOURCE, day)),
            }, partition_key=hour)
    return dg.MaterializeResult()


@dg.multi_asset_check(
    specs=[dg.AssetCheckSpec("bronze_consistent", asset=pncp_new_records, partitions_def=hourly_partitions,
                             blocking=True, description="The no_duplicates rules over Bronze as it is, without "
                             "ingesting (job pncp_checks)")],
)
def bronze_consistent(context: dg.AssetCheckExecutionContext, bronze_storage: BronzeStorage) -> Iterator[Any]:
    committer = DeltaCommitter(bronze_storage.object_store(), SOURCE, logger=context.log)
    for hour, report in committer.check_hours(context.op_execution_context.partition_keys).items():
        yield check_evaluation(report, "bronze_consistent", hour)
    yield _check_done(context.op_execution_context, "bronze_consistent")
