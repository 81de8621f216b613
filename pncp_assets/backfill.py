"""Backfills from the command line, as the UI launches them: `python -m pncp_assets.backfill`.

    python -m pncp_assets.backfill --from 2025-10-01 --to 2025-10-31 [--feeds pncp,pncp_contratos] [--detach]
    python -m pncp_assets.backfill --follow ID
    python -m pncp_assets.backfill --list
    python -m pncp_assets.backfill --cancel ID
    python -m pncp_assets.backfill --resume ID


The instance is found as the `dagster` command finds it (DAGSTER_HOME). A launch adds an asset backfill of
every hour of the days asked (those that have ended) for the feeds' three assets each, exactly as the UI's
*Materialize -> pick partitions* does: the daemon executes it, one run per day (the assets' backfill policy),
through the instance's queue and pools. By default the command then follows it to its end, printing its
progress and an estimate of the time left; it exits 0 when every day's run succeeded, 1 otherwise.
`--detach` returns once it is launched. `--resume ID` launches what a finished backfill left undone (its days
failed in a PNCP outage longer than the runs wait, or canceled), as the UI's *Re-execute -> From failure*, and
follows it. Exit 2: bad input (dates, feeds, an unknown backfill, no DAGSTER_HOME).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import dagster as dg
from dagster._core.definitions.assets.graph.asset_graph import AssetGraph  # these four: not exported in 1.13
from dagster._core.errors import DagsterHomeNotSetError
from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
from dagster._core.storage.tags import PARENT_BACKFILL_ID_TAG, ROOT_BACKFILL_ID_TAG
from dagster._core.utils import make_new_backfill_id

from pncp_assets.brasilia import TZ, parse_day, span, utc_now
from pncp_assets.cli_args import OneLineParser
from pncp_assets.layers import LAYERS, Layer

LAUNCHED_BY_TAG = "pncp/launched_by"
DONE = {BulkActionStatus.COMPLETED, BulkActionStatus.COMPLETED_SUCCESS, BulkActionStatus.COMPLETED_FAILED,
        BulkActionStatus.FAILED, BulkActionStatus.CANCELED}
RUNNING = {dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
           dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING}
RANGE_START = "dagster/asset_partition_range_start"


class BadInput(ValueError):
    """Input the command refuses (exit 2), said in one line."""


def feeds_named(text: str) -> list[Layer]:
    """`all`, or layer prefixes separated by commas (`pncp,pncp_contratos`)."""
    if text.strip() == "all":
        return list(LAYERS)
    known = {layer.source: layer for layer in LAYERS}
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise BadInput(f"unknown feed {', '.join(unknown) or repr(text)}: the feeds are {', '.join(known)}, or all")
    return [known[name] for name in names]


def hours_between(first: dt.date, last: dt.date, partitions: dg.TimeWindowPartitionsDefinition,
                  now: dt.datetime) -> list[str]:
    """The hourly partitions of the days `first`..`last` (Brasília) that exist at `now` (hours that ended)."""
    if last < first:
        raise BadInput(f"--to {last} is before --from {first}")
    start = partitions.start.astimezone(TZ).date()
    if last < start:
        raise BadInput(f"{first} .. {last} is before the pipeline's first day, {start} (PNCP_START_DATE)")
    keys = partitions.get_partition_keys_in_range(
        dg.PartitionKeyRange(f"{max(first, start):%Y-%m-%d}-00:00", f"{last:%Y-%m-%d}-23:00"))
    ended = set(partitions.get_partition_keys(current_time=now))
    hours = [k for k in keys if k in ended]
    if not hours:
        raise BadInput(f"no hour of {first} .. {last} has ended yet")
    return hours


def _asset_graph() -> AssetGraph:
    from pncp_assets.defs.assets import GRAPHS

    return AssetGraph.from_assets([a for g in GRAPHS.values() for a in g.assets])  # the code location's


def launch(instance: dg.DagsterInstance, layers: Sequence[Layer], hours: Sequence[str], title: str) -> str:
    """An asset backfill of `hours` for the layers' assets, added to the instance for the daemon; its id."""
    from pncp_assets.defs.assets import GRAPHS

    assets = [asset for layer in layers for asset in GRAPHS[layer.source].assets]
    graph = _asset_graph()
    backfill_id = make_new_backfill_id()
    backfill = PartitionBackfill.from_asset_partitions(
        backfill_id=backfill_id, asset_graph=graph, partition_names=list(hours),
        asset_selection=[key for asset in assets for key in asset.keys], backfill_timestamp=time.time(),
        tags={LAUNCHED_BY_TAG: "python -m pncp_assets.backfill"}, dynamic_partitions_store=instance,
        all_partitions=False, title=title, description=None, run_config=None)
    instance.add_backfill(backfill)
    return backfill_id


@dataclass(frozen=True)
class Progress:
    status: BulkActionStatus
    days: int  # the runs the backfill makes: one per day (24 hours) of its hours
    succeeded: int  # days whose latest run succeeded
    running: int
    failed: list[str]  # run ids of days whose latest run failed or was canceled

    @property
    def finished(self) -> bool:
        return self.status in DONE and not self.running

    def line(self, elapsed_s: float) -> str:
        text = (f"{self.succeeded} of {self.days} days done, {self.running} running, {len(self.failed)} failed; "
                f"{span(elapsed_s)} elapsed")
        if 0 < self.succeeded < self.days and not self.finished:
            left = elapsed_s / self.succeeded * (self.days - self.succeeded - len(self.failed))
            text += f", about {span(left)} left"
        return text


def progress(instance: dg.DagsterInstance, backfill: PartitionBackfill) -> Progress:
    """Where a backfill stands: its runs grouped by the day they file (a retried run replaces its parent)."""
    runs = instance.get_runs(filters=dg.RunsFilter.for_backfill(backfill.backfill_id))  # newest first
    latest: dict[str, dg.DagsterRun] = {}
    for run in runs:
        latest.setdefault(run.tags.get(RANGE_START) or run.tags.get("dagster/partition") or run.run_id, run)
    target = backfill.asset_backfill_data.target_subset if backfill.asset_backfill_data else None
    hours = max((len(list(s.get_partition_keys())) for s in target.partitions_subsets_by_asset_key.values()),
                default=0) if target else 0
    days = max(len(latest), -(-hours // 24))
    status = [r.status for r in latest.values()]
    return Progress(backfill.status, days, status.count(dg.DagsterRunStatus.SUCCESS),
                    sum(s in RUNNING for s in status),
                    [r.run_id for r in latest.values()
                     if r.status in (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)])


def follow(instance: dg.DagsterInstance, backfill_id: str, interval_s: float = 10.0,
           daemon_grace_s: float = 60.0) -> int:
    """Print the backfill's progress whenever it changes until it ends; 0 when every day succeeded."""
    started = time.monotonic()
    said, warned = "", False
    while True:
        backfill = instance.get_backfill(backfill_id)
        if backfill is None:
            raise BadInput(f"no backfill {backfill_id} in this instance")
        now = progress(instance, backfill)
        line = now.line(time.monotonic() - started)
        if line.split(";")[0] != said.split(";")[0] or now.finished:
            print(f"{_clock()} {backfill_id}: {line}", flush=True)
            said = line
        if now.finished:
            break
        if not warned and now.status == BulkActionStatus.REQUESTED and not now.running and not now.succeeded \
                and time.monotonic() - started > daemon_grace_s:
            print(f"{_clock()} {backfill_id}: no run launched after {daemon_grace_s:.0f} s: is dagster-daemon "
                  "running on this instance (the same DAGSTER_HOME)?", file=sys.stderr, flush=True)
            warned = True
        time.sleep(interval_s)
    ok = now.status in (BulkActionStatus.COMPLETED, BulkActionStatus.COMPLETED_SUCCESS) and not now.failed \
        and now.succeeded == now.days
    outcome = "every day succeeded" if ok else (
        f"{len(now.failed)} days failed (runs {', '.join(now.failed[:10])})" if now.failed else "not every day ran")
    print(f"{_clock()} {backfill_id}: {now.status.value}: {outcome}", flush=True)
    return 0 if ok else 1


def list_backfills(instance: dg.DagsterInstance, limit: int = 20) -> None:
    for backfill in instance.get_backfills(limit=limit):
        now = progress(instance, backfill)
        created = dt.datetime.fromtimestamp(backfill.backfill_timestamp, TZ).strftime("%Y-%m-%d %H:%M")
        print(f"{backfill.backfill_id}  {backfill.status.value:<18} {created}  {now.succeeded}/{now.days} days "
              f"done, {now.running} running, {len(now.failed)} failed  {backfill.title or ''}")


def cancel(instance: dg.DagsterInstance, backfill_id: str) -> None:
    """As the UI's Cancel: the daemon then cancels its queued and running runs and marks it canceled."""
    backfill = instance.get_backfill(backfill_id)
    if backfill is None:
        raise BadInput(f"no backfill {backfill_id} in this instance")
    if backfill.status in DONE or backfill.status == BulkActionStatus.CANCELING:
        print(f"{backfill_id}: already {backfill.status.value}")
        return
    instance.update_backfill(backfill.with_status(BulkActionStatus.CANCELING))
    print(f"{backfill_id}: canceling (the daemon cancels its runs)")


def resume(instance: dg.DagsterInstance, backfill_id: str) -> tuple[str, int] | None:
    """A new backfill of what the finished backfill `backfill_id` did not materialise (the UI's Re-execute ->
    From failure): its id and hours, or None when nothing is left."""
    backfill = instance.get_backfill(backfill_id)
    if backfill is None:
        raise BadInput(f"no backfill {backfill_id} in this instance")
    if backfill.status not in DONE:
        raise BadInput(f"{backfill_id} is still {backfill.status.value.lower()}: wait for its end (--follow), "
                       "or --cancel it")
    data = backfill.get_asset_backfill_data(_asset_graph())
    left = data.target_subset - data.materialized_subset
    hours = {key.partition_key for key in left.iterate_asset_partitions()}
    if not hours:
        return None
    again = PartitionBackfill.from_asset_graph_subset(
        backfill_id=make_new_backfill_id(), backfill_timestamp=time.time(), dynamic_partitions_store=instance,
        asset_graph_subset=left, run_config=backfill.run_config, description=backfill.description,
        tags={**backfill.tags, PARENT_BACKFILL_ID_TAG: backfill_id,
              ROOT_BACKFILL_ID_TAG: backfill.tags.get(ROOT_BACKFILL_ID_TAG, backfill_id)},
        title=f"Resumption of {backfill.title or backfill_id}")
    instance.add_backfill(again)
    return again.backfill_id, len(hours)


def _clock() -> str:
    return utc_now().astimezone(TZ).strftime("%H:%M:%S")


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m pncp_assets.backfill", description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--from", dest="first", type=_day, metavar="YYYY-MM-DD",
                        help="first day (Brasília) to backfill")
    action.add_argument("--follow", metavar="ID", help="follow a backfill already launched")
    action.add_argument("--list", action="store_true", help="the instance's latest backfills")
    action.add_argument("--cancel", metavar="ID", help="cancel a backfill, as the UI's Cancel")
    action.add_argument("--resume", metavar="ID", help="launch what a finished backfill left undone, and follow it")
    parser.add_argument("--to", dest="last", type=_day, metavar="YYYY-MM-DD", help="last day (default: --from)")
    parser.add_argument("--feeds", default="all", help="layer prefixes, comma-separated, or all (default)")
    parser.add_argument("--detach", action="store_true", help="return once launched")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between progress checks")
    args = parser.parse_args(argv)
    try:
        if args.first is None and (args.last or (args.detach and not args.resume)):
            raise BadInput("--to goes with --from; --detach with --from or --resume")
        if args.first is None:
            instance = _instance()
            if args.list:
                list_backfills(instance)
                return 0
            if args.cancel:
                cancel(instance, args.cancel)
                return 0
            if args.resume:
                resumed = resume(instance, args.resume)
                if resumed is None:
                    print(f"{args.resume}: nothing left to do, every hour it asked for is materialised")
                    return 0
                print(f"{_clock()} {resumed[0]}: launched, the {resumed[1]} hours {args.resume} left undone",
                      flush=True)
                return 0 if args.detach else follow(instance, resumed[0], args.interval)
            return follow(instance, args.follow, args.interval)
        first, last = args.first, args.last or args.first
        layers = feeds_named(args.feeds)
        from pncp_assets.defs.partitions import hourly_partitions

        hours = hours_between(first, last, hourly_partitions, utc_now())  # bad input said before the instance
        title = f"{first} .. {last}: {', '.join(layer.source for layer in layers)}"
        backfill_id = launch(_instance(), layers, hours, title)
        print(f"{_clock()} {backfill_id}: launched, {len(hours)} hours of {title} "
              f"({-(-len(hours) // 24)} runs, executed by the daemon)", flush=True)
        return 0 if args.detach else follow(_instance(), backfill_id, args.interval)
    except BadInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("stopped following; the backfill goes on (--follow ID, or --cancel ID)", file=sys.stderr)
        return 130


def _day(text: str) -> dt.date:
    try:
        return parse_day(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _instance() -> dg.DagsterInstance:
    try:
        return dg.DagsterInstance.get()
    except DagsterHomeNotSetError:
        raise BadInput("DAGSTER_HOME is not set: point it at the instance the webserver and daemon use") from None


if __name__ == "__main__":
    raise SystemExit(main())
