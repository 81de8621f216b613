"""When PNCP is down: one outage for the whole instance, said once, and no run launched into it.

A sweep waits out an outage for up to `PncpApi.outage_bound_minutes` (the client: `PncpUnavailable`), saying so in
the run's log and in its `pncp/outage` tag (the Runs page shows it). Past the bound the run fails and declares the
outage in the instance's key-value store (`OUTAGE_KEY`: since when, which run, whether the alert went out). Until
a sweep answers well again, which clears it:
- the schedules probe PNCP with one request at each tick and launch nothing while it fails: the tick is skipped,
  saying why, where it would have started a run that waits the bound and fails, every hour;
- once the probe answers, the hourly schedule launches every hour since the outage began, in runs of up to a day
  (`catch_up_requests`);
- the run-failure alert says the outage once (`first_announcement`); later runs failing in it (a backfill's
  next days) post nothing. `python -m pncp_assets.backfill --resume ID` then runs the days a backfill lost.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass

import dagster as dg

from pncp_assets.brasilia import TZ, span, utc_now
from pncp_assets.defs.resources import PncpApi
from pncp_assets.layers import FIRST_SEEN
from pncp_assets.layout import hours_by_day, parse_partition_key, partition_key_for
from pncp_assets.pncp.client import ModalidadeReport, PncpError

OUTAGE_KEY = "pncp_assets/outage"  # in the instance's key-value store (its run storage)
OUTAGE_TAG = "pncp/outage"  # on a run waiting out an outage, or that rode one out: what happened, in words
UNAVAILABLE_TAG = "pncp/unavailable_since"  # on a run that failed because PNCP stayed down
CATCH_UP_DAYS = 7  # the hourly schedule catches up at most this far back; older hours are a backfill's job


@dataclass
class Outage:
    since: str  # ISO UTC: the first failed request of the run that declared it
    run_id: str
    announced: bool = False

    @property
    def since_time(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.since)


def declared(instance: dg.DagsterInstance) -> Outage | None:
    raw = instance.run_storage.get_cursor_values({OUTAGE_KEY}).get(OUTAGE_KEY)
    return Outage(**json.loads(raw)) if raw else None


def _save(instance: dg.DagsterInstance, outage: Outage | None) -> None:
    instance.run_storage.set_cursor_values({OUTAGE_KEY: json.dumps(asdict(outage)) if outage else ""})


def declare(instance: dg.DagsterInstance, since: dt.datetime, run_id: str) -> Outage:
    """The outage PNCP is in: kept as first declared (its start and whether it was announced) if one is."""
    outage = declared(instance) or Outage(since.astimezone(dt.UTC).isoformat(), run_id)
    _save(instance, outage)
    return outage


def clear(instance: dg.DagsterInstance) -> bool:
    """PNCP answers again (a sweep succeeded): True if an outage was declared."""
    if declared(instance) is None:
        return False
    _save(instance, None)
    return True


def first_announcement(instance: dg.DagsterInstance) -> Outage | None:
    """The declared outage if no alert has said it yet (and mark it said), None otherwise."""
    outage = declared(instance)
    if outage is None or outage.announced:
        return None
    outage.announced = True
    _save(instance, outage)
    return outage


def run_tagger(instance: dg.DagsterInstance, run_id: str) -> Callable[[dt.datetime, float | None], None]:
    """The client's `on_outage`: the run's `pncp/outage` tag says what is happening, for the Runs page."""

    def on_outage(since: dt.datetime, seconds: float | None) -> None:
        text = (f"waiting: PNCP unavailable since {since:%Y-%m-%d %H:%M} UTC" if seconds is None else
                f"ridden out: PNCP unavailable {span(seconds)} from {since:%Y-%m-%d %H:%M} UTC")
        instance.add_run_tags(run_id, {OUTAGE_TAG: text})

    return on_outage


def probe(pncp_api: PncpApi) -> str | None:
    """One request (page 1 of the first modalidade of today's contratações), no retry: None when PNCP answers
    well, else what went wrong."""
    client = pncp_api.client(endpoint=FIRST_SEEN.endpoint, max_attempts=1, outage_bound_s=0, max_in_flight=1,
                             start_in_flight=1)
    modalidade = client.modalidades[0] if client.endpoint.by_modalidade else None
    try:
        client.fetch_page(utc_now().astimezone(TZ).date(), modalidade, 1, ModalidadeReport(modalidade))
    except PncpError as exc:
        return str(exc.__cause__ or exc)[:200]
    return None


def gate(instance: dg.DagsterInstance, pncp_api: PncpApi) -> tuple[Outage | None, str | None]:
    """For a schedule's tick: the declared outage (None: none), and why to launch nothing (None: go ahead)."""
    outage = declared(instance)
    if outage is None:
        return None, None
    problem = probe(pncp_api)
    if problem is None:
        return outage, None
    return outage, (f"PNCP unavailable since {outage.since_time:%Y-%m-%d %H:%M} UTC (declared by run "
                    f"{outage.run_id[:8]}); the probe still fails: {problem}. No run launched: the first tick after "
                    "PNCP answers again launches the hours missed meanwhile.")


def catch_up_requests(outage: Outage, last_hour: str,
                      partitions: dg.TimeWindowPartitionsDefinition) -> list[dg.RunRequest]:
    """The hours from the one running when the outage began (at most `CATCH_UP_DAYS` back, never before the
    partitions' start) to `last_hour`, in one run per Brasília day (a range run, as a backfill's)."""
    start = max(parse_partition_key(partition_key_for(outage.since_time - dt.timedelta(hours=1))),
                parse_partition_key(last_hour) - dt.timedelta(days=CATCH_UP_DAYS), partitions.start)
    hours = partitions.get_partition_keys_in_range(dg.PartitionKeyRange(partition_key_for(start), last_hour))
    return [dg.RunRequest(
        run_key=f"catch_up_{keys[0]}_{keys[-1]}_{outage.since}",
        tags={"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1],
              "pncp/catch_up": f"{day} after PNCP unavailable since {outage.since_time:%Y-%m-%d %H:%M} UTC"})
        for day, keys in hours_by_day(hours).items()]
