"""The retention job and its schedule (off by default): archive old day states, expire raw sweeps, rejected
records, orphaned staged deltas and the Pushgateway's old groups (`retention.py` says what is kept how long
and why)."""

# No `from __future__ import annotations` here: Dagster reads the op's config class from its annotation.

import datetime as dt

import dagster as dg

from pncp_assets.brasilia import TZ, utc_now
from pncp_assets.defs.partitions import TIMEZONE
from pncp_assets.defs.resources import BronzeStorage, MetricsGateway, Retention
from pncp_assets.layers import LAYERS
from pncp_assets.retention import apply_retention


class RetentionConfig(dg.Config):
    today: str = ""  # the Brasília day the retention counts back from (YYYY-MM-DD); empty: today
    dry_run: bool = False


@dg.op(description="Every layer: day states older than the retention archived (a month in one object, each "
       "state file a marker that names it), raw sweeps, rejected records and orphaned staged deltas expired, and "
       "the Pushgateway's groups of old days deleted. Bronze deltas are never touched.")
def apply_retention_op(context: dg.OpExecutionContext, config: RetentionConfig, bronze_storage: BronzeStorage,
                       retention: Retention, metrics_gateway: MetricsGateway) -> None:
    today = dt.date.fromisoformat(config.today) if config.today else utc_now().astimezone(TZ).date()
    policy = retention.policy()
    reports = apply_retention(bronze_storage.object_store(), LAYERS, today,
                              policy, dry_run=config.dry_run, logger=context.log)
    pruned = 0
    gateway = metrics_gateway.gateway()
    if gateway is not None:
        before = today - dt.timedelta(days=policy.metrics_days)
        pruned, error = gateway.prune(before, dry_run=config.dry_run)
        context.log.info(f"Retention: {pruned} metric groups of days before {before} "
                         + ("would be " if config.dry_run else "") + f"deleted from {gateway.shown}")
        if error is not None:  # the rest waits for the next run; the Bronze retention above is done
            context.log.warning(f"Metric groups not pruned from {gateway.shown} ({type(error).__name__}: "
                                f"{str(error)[:200]})")
    context.add_output_metadata({
        "metric_groups_deleted": pruned,
        "day_states_archived": sum(len(r.archived) for r in reports),
        "state_bytes_saved": sum(r.state_bytes_before - r.state_bytes_after for r in reports),
        "raw_bytes_deleted": sum(r.raw_bytes for r in reports),
        "rejected_bytes_deleted": sum(r.rejected_bytes for r in reports),
        "staged_removed": sum(r.staged_removed for r in reports),
        "kept_live": dg.MetadataValue.json({r.source: r.skipped for r in reports if r.skipped}),
    })


@dg.job(name="pncp_retention", description="Archive old day states and expire raw sweeps, rejected records and "
        "orphaned staged deltas, by the Retention resource's days (PNCP_STATE_RETENTION_DAYS, ...).")
def pncp_retention() -> None:
    apply_retention_op()


@dg.schedule(job=pncp_retention, cron_schedule="30 3 * * *", execution_timezone=TIMEZONE,
             name="pncp_retention_schedule", default_status=dg.DefaultScheduleStatus.STOPPED,
             description="Each day at 03:30 (Brasília time), the retention job. Off by default: turn it on in "
             "Automation once the retention days suit you (docs/OPERATIONS.md, 'Retention').")
def pncp_retention_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    today = context.scheduled_execution_time.astimezone(TZ).date()
    return dg.RunRequest(run_key=f"retention_{today}",
                         run_config={"ops": {"apply_retention_op": {"config": {"today": today.isoformat()}}}})
