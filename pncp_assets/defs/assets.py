"""The Bronze graph: for each layer of the registry (`layers.LAYERS`) three assets and a check, thin wiring
over the domain, named by one rule (`AssetNames`: the layer's prefix, then what the asset holds):

    pncp_raw_pages                     -> pncp_new_records                     -> pncp_daily_state
    pncp_versions_raw_pages            -> pncp_versions_new_records            -> pncp_versions_daily_state
    pncp_contratos_raw_pages           -> pncp_contratos_new_records           -> pncp_contratos_daily_state
    pncp_contratos_versions_raw_pages  -> pncp_contratos_versions_new_records  -> pncp_contratos_versions_daily_state
    pncp_atas_versions_raw_pages       -> pncp_atas_versions_new_records       -> pncp_atas_versions_daily_state

Each delta asset has its blocking `no_duplicates` check; those of contratos and atas also `contratacao_links`.

Every asset takes a range of hours (`context.partition_keys`): a single hour from the schedule, or up
to a day from a backfill (`BACKFILL_POLICY`), processed in time order, with one sweep per day. Each
hour still gets its own materialisation, metadata and check verdict.
"""

import contextlib
import datetime as dt
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg
from dagster._core.definitions.asset_checks.asset_check_evaluation import (  # not exported by `dagster` in 1.13
    AssetCheckEvaluationTargetMaterializationData,
)

from pncp_assets import day_figures, holes, layout, ledger
from pncp_assets.commit import CommitResult, DeltaCommitter, Deltas
from pncp_assets.consistency import CheckReport, ConsistencyCheck
from pncp_assets.day_index import DayIndex
from pncp_assets.defs import outage
from pncp_assets.defs.io_manager import SOURCE_METADATA
from pncp_assets.defs.metrics import StepMetrics, hour_figures, run_id_of
from pncp_assets.defs.partitions import daily_partitions, hourly_partitions
from pncp_assets.defs.resources import BronzeStorage, MetricsGateway, PncpApi
from pncp_assets.layers import FIRST_SEEN, LAYERS, LINKED_FEED, VERSIONS, Layer, first_seen_of, linked_layers
from pncp_assets.links import LOOKBACK_DAYS, LinkReport, link_reports
from pncp_assets.pncp.client import PncpRequestError, PncpUnavailable
from pncp_assets.state import StateManager
from pncp_assets.sweeps import StoredSweep, SweepStore
from pncp_assets.sweeps import clock as sweep_clock

GROUP = "bronze_pncp"
LINKS_CHECK = "contratacao_links"  # on contratos and atas: the contratação each points at is in Bronze
COMPLETENESS_CHECK = "completeness"  # on each day's 23:00: Bronze against PNCP's count (the completeness ledger)
API_POOL = "pncp_api"  # every run that talks to PNCP: one budget for the whole instance
STATE_POOL = "pncp_state"

# A backfill launches one run per 24 hours (a day, when it starts at 00:00), all the assets in it:
# a month from the UI is about 30 runs, not 2,000, and each day is swept once per layer.
BACKFILL_POLICY = dg.BackfillPolicy.multi_run(max_partitions_per_run=24)


@contextlib.contextmanager
def chosen_apis() -> Iterator[None]:
    """Defining with the Dagster APIs this project chose knowing their status: range runs for backfills
    (`backfill_policy`, beta), per-hour check verdicts (`AssetCheckSpec(partitions_def=...)`, preview) and the
    time-partition freshness checks (superseded by freshness policies, which judge a partitioned asset as a
    whole; docs/OPERATIONS.md). Their notices would otherwise repeat in every process that loads the code
    location (webserver, daemon, code server, each run)."""
    from dagster._utils.warnings import SupersessionWarning

    with warnings.catch_warnings():
        for category in (dg.BetaWarning, dg.PreviewWarning, SupersessionWarning):
            warnings.simplefilter("ignore", category)
        yield


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
        # Modalidades whose page 1 gave the count the day was already complete at: not fetched further.
        "counted_only": sum(bool(r.get("counted_only")) for r in sweep.reports.values()),
        "sweep_reused": sweep.reused,
        "raw_key": dg.MetadataValue.path(sweep.key),
    }


def _sweep(context: dg.AssetExecutionContext, layer: Layer, pncp_api: PncpApi, bronze_storage: BronzeStorage,
           metrics_gateway: MetricsGateway) -> dg.MaterializeResult:
    """Sweep the layer's endpoint for the days of the run's hours (or reuse a recent sweep)."""
    sweeps = SweepStore(bronze_storage.object_store(), layer, logger=context.log)
    with StepMetrics(context, layer, metrics_gateway) as metrics:
        served = _sweep_hours(context, layer, pncp_api, sweeps, context.partition_keys, metrics)
    for hour, sweep in served.items():
        context.add_asset_metadata(_sweep_metadata(sweep), partition_key=hour)
        if not sweep.reused and sweep.totals()["shortfall"]:
            context.log.warning(f"Sweep of {sweep.day} is short of totalRegistros by "
                                f"{sweep.totals()['shortfall']} records")
    return dg.MaterializeResult()


def _sweep_hours(context: dg.AssetExecutionContext, layer: Layer, pncp_api: PncpApi, sweeps: SweepStore,
                 hours: Sequence[str], metrics: StepMetrics) -> dict[str, StoredSweep]:
    """The sweeps serving `hours` (a recent stored one, or a new one per day), with Dagster's step retries for
    trouble that outlasted the client's own; the caller holds the `pncp_api` pool. What each new sweep cost
    goes to the metrics."""
    on_outage = outage.run_tagger(context.instance, context.run_id)
    client = pncp_api.client(context.log, endpoint=layer.endpoint, on_outage=on_outage)
    states = StateManager(sweeps.storage)
    sibling = first_seen_of(layer) if layer.versioned else None

    def settled(day: dt.date) -> dict[int | None, int]:  # count first, where the day was complete (the ledger)
        own = states.load_fresh(layer, day).state
        if sibling is None:
            return ledger.settled(own, day)

        def first_seen_now() -> dict[int | None, int]:
            counter = pncp_api.client(context.log, endpoint=sibling.endpoint, on_outage=on_outage)
            try:
                return counter.count_day(day)
            finally:
                counter.wait_out_interval()  # the pacing holds across the two clients too (its log says the cost)

        return ledger.settled_versions(own, states.load_fresh(sibling, day).state, day, first_seen_now,
                                       sweep_clock())

    try:
        served = sweeps.sweep_hours(hours, client, max_age=pncp_api.sweep_max_age, run_id=run_id_of(context),
                                    settled=settled if pncp_api.count_first else None)
    except PncpRequestError:
        raise  # the API refused the request itself (400/422): trying again cannot help
    except PncpUnavailable as exc:
        # The run already waited the outage bound: no step retry on top. The instance knows of the outage, so
        # that the schedules launch nothing into it and the alert says it once (`outage.py`).
        began = sweep_clock() - dt.timedelta(seconds=exc.seconds)  # on the pipeline's clock, as the schedules'
        declared = outage.declare(context.instance, began, context.run_id)
        context.instance.add_run_tags(context.run_id, {outage.UNAVAILABLE_TAG: declared.since})
        raise
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
    fetched = [sweep for sweep in served.values() if not sweep.reused]
    for sweep in fetched:
        metrics.sweep(sweep)
    if fetched and outage.clear(context.instance):
        context.log.info("PNCP answers again: the outage declared earlier is over (the schedules launch runs again)")
    return served


def _preview(result: CommitResult, layer: Layer, limit: int = 5) -> str:
    if result.output is None or not result.new_ids:
        return "(no new records)"
    new = set(result.new_ids)
    columns = layer.preview
    table = result.output.table
    rows = [r for r in table.select([layer.key.field, *[c for c, _ in columns]]).to_pylist()
            if r[layer.key.field] in new][:limit]
    lines = ["| " + " | ".join(h for _, h in columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        cells = [r[c].strftime("%Y-%m-%d %H:%M") if hasattr(r[c], "strftime") else
                 ("" if r[c] is None else str(r[c]).replace("|", "/")[:60]) for c, _ in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _delta_metadata(result: CommitResult, layer: Layer) -> dict[str, Any]:
    """Per hour: what was filed and why the rest was not. Few numbers, each worth a plot."""
    stats = result.stats
    metadata: dict[str, Any] = {
        "new": stats["new_records"],
        "late": result.late,
        # Records up to H's end that earlier hours (or an earlier run of H) filed: not duplicates in Bronze.
        "filed_earlier": stats["already_processed"],
        "rejected": stats["rejected"],
        "filter_rate": result.filter_rate,
        "commit_attempts": result.attempts,  # above 1: other runs of the day committed first
        "status": result.status,
        "preview": dg.MetadataValue.md(_preview(result, layer)),
    }
    if result.output is None:  # nothing new to publish; an hour with a delta gets these from the IO manager
        metadata.update({"dagster/row_count": result.held, "bytes": 0, "bronze_key": dg.MetadataValue.path(result.key)})
    if layer.versioned:
        metadata["versions_fetched"] = stats["input_records"]  # the sweep's versions up to the end of H
        metadata["records_changed"] = result.changed  # new versions of contratações published before H
    if result.reason:
        metadata["no_data_reason"] = result.reason
    if result.rejected_key:
        metadata["rejected_key"] = dg.MetadataValue.path(result.rejected_key)
    return metadata


def _ledger_metadata(entry: dict[str, Any], day: dt.date) -> dict[str, Any]:
    """PNCP's count of the day at this sweep and how many of the records it listed Bronze holds; for the day's
    last hour (every record of the day eligible), how many are short of the count."""
    api, held, _ = ledger.totals(entry)
    metadata: dict[str, Any] = {"api_total": api, "bronze_held": held}
    short = ledger.shortfalls([entry], day)
    if short is not None:
        metadata["api_short"] = sum(s.missing for s in short)
    return metadata


def _completeness_verdict(judged: tuple[ledger.DayVerdict, bool]) -> dict[str, Any]:
    """The day as a whole, on its 23:00: short where Bronze holds fewer of its records than PNCP counted, or
    lacks records the versions feed showed (holes). `final`: judged by the last re-sweep (no other comes)."""
    verdict, final = judged
    entry = verdict.entry
    api, held, rejected = ledger.totals(entry)
    if verdict.passed:
        description = f"Complete: PNCP counted {api} at {entry['at']}; Bronze holds every one (or its rejection)"
    else:
        description = "Incomplete: " + "; ".join(verdict.problems())
    if verdict.fell:
        description += ". " + "; ".join(verdict.notes())
    return {"passed": verdict.passed, "severity": dg.AssetCheckSeverity.ERROR, "description": description,
            "metadata": {"api_total": api, "bronze_held": held, "rejected": rejected,
                         "api_short": sum(s.missing for s in verdict.short), "holes": len(verdict.holes),
                         "withdrawn": sum(high - now for high, now in verdict.fell.values()),
                         "counted_at": entry["at"], "final": final}}


def _verdict(report: CheckReport) -> dict[str, Any]:
    return {
        "passed": report.passed,
        "severity": dg.AssetCheckSeverity.ERROR,
        "description": "; ".join(report.problems) or "no duplicates; state agrees with Bronze",
        "metadata": {"delta_files": report.files, "delta_rows": report.delta_rows,
                     "offending_ids": dg.MetadataValue.json(report.offending)},
    }


def _link_verdict(report: LinkReport) -> dict[str, Any]:
    """Not an error of the pipeline: such records are in Bronze like any other, and the check says so. It fails
    only where Bronze should hold the contratação (every day of the window ingested)."""
    if report.missing:
        description = (f"{report.missing} of {report.records} records point at a contratação that Bronze does not "
                       f"hold (pncp/ or pncp_versions/, within {LOOKBACK_DAYS} days, every one of them ingested)")
    elif report.outside_coverage:
        description = (f"{report.outside_coverage} of {report.records} records point at a contratação Bronze does not "
                       f"hold, possibly of a day never ingested ({' .. '.join(report.uncovered)}): outside coverage, "
                       "not a failure")
    else:
        description = f"all {report.records} records point at a contratação in Bronze"
    return {
        "passed": report.missing == 0,
        "severity": dg.AssetCheckSeverity.WARN,
        "description": description,
        "metadata": {"records": report.records, "missing_contratacao": report.missing,
                     "outside_coverage": report.outside_coverage,
                     "examples": dg.MetadataValue.json(report.examples)},
    }


def check_evaluations(instance: dg.DagsterInstance, reports: dict[str, Any], check_name: str,
                      asset: str, verdict: Callable[[Any], dict[str, Any]] = _verdict,
                      blocking: bool = True, metrics: StepMetrics | None = None) -> Iterator[dg.AssetCheckEvaluation]:
    """One verdict per hour, each naming its hour and the hour's latest materialisation.

    An `AssetCheckEvaluation` names its partition itself, so a run over a range of hours still records one
    verdict per hour (an `AssetCheckResult` from a range run is recorded without a partition in Dagster 1.13).
    The UI counts an hour's check as passed or failed (the check's Partitions tab, GraphQL
    `partitionStatuses`) only when the verdict targets that hour's latest materialisation; without it the
    verdict shows only in the execution history."""
    key = dg.AssetKey(asset)
    for hour, report in reports.items():
        judged = verdict(report)
        if metrics is not None:
            metrics.check(check_name, hour, judged["passed"])
        yield dg.AssetCheckEvaluation(asset_key=key, check_name=check_name, blocking=blocking, partition=hour,
                                      target_materialization_data=_latest_materialization(instance, key, hour),
                                      **judged)


def _latest_materialization(instance: dg.DagsterInstance, key: dg.AssetKey,
                            hour: str) -> AssetCheckEvaluationTargetMaterializationData | None:
    """The hour's latest materialisation (the one just recorded, in the delta asset's own step), as Dagster
    itself looks it up for an `AssetCheckResult` of a single partition."""
    records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=key, asset_partitions=[hour]),
                                              limit=1).records
    if not records:
        return None  # checked before the hour was ever materialised: nothing to tie the verdict to
    return AssetCheckEvaluationTargetMaterializationData(run_id=records[0].run_id, storage_id=records[0].storage_id,
                                                         timestamp=records[0].timestamp)


def _run_tags(context: dg.AssetExecutionContext) -> dict[str, str]:
    try:
        return dict(context.run.tags)
    except dg.DagsterError:  # invoked directly (a test): no run
        return {}


class _CrossFeed:
    """What a run's filed records say about other days and feeds, from one multi-day index per feed (shared
    with the links check): a version whose first-seen record is missing from its finished publication day is a
    hole of that day (`holes.py`), written into its state for the re-sweep; an ID filed on a day while another
    day's first-seen state holds it too (PNCP moved its publication date) is reported."""

    def __init__(self, store: Any, layer: Layer, log: Any):
        self.store, self.layer, self.log = store, layer, log
        self.registry = LAYERS if layer in LAYERS else (*LAYERS, layer)  # a layer declared outside the registry
        self.first_seen = first_seen_of(layer, self.registry)
        self._indexes: dict[str, DayIndex] = {}

    def index_of(self, feed: str) -> DayIndex:
        if feed not in self._indexes:
            self._indexes[feed] = DayIndex.of_feed(self.store, feed, self.registry)
        return self._indexes[feed]

    def after(self, hour: str, sweep: StoredSweep, result: CommitResult) -> dict[str, Any]:
        """H's metadata about other days: holes found, IDs on other days too."""
        if not result.new_ids or self.first_seen is None:
            return {}
        day = layout.parse_partition_key(hour).date()
        index = self.index_of(self.layer.feed)
        new = set(result.new_ids)
        if self.layer.versioned:
            filed = [r for r, _ in sweep.records() if self.layer.key.problem(r) is None and self.layer.key.of(r) in new]
            found = holes.find(index, self.layer, filed, layout.delta_key(self.layer.source, hour), day)
            if found:
                holes.record(index.state, self.first_seen, found)
                self.log.warning(f"{len(found)} {self.first_seen.title.split(',')[0]} of finished days are in "
                                 f"{self.layer.source}/ but not in {self.first_seen.source}/ (holes; their days are "
                                 "swept again at the next re-sweep): "
                                 + "; ".join(f"{h.id} of {h.day}" for h in found[:10]))
            return {"holes_found": len(found)}
        twice = holes.filed_before(index, new, day)
        if twice:
            self.log.warning(f"{len(twice)} IDs filed into {day} are filed on other days too (PNCP moved their "
                             "publication date): " + "; ".join(f"{x} ({', '.join(d)})" for x, d in
                                                               list(twice.items())[:10]))
        return {"also_on_other_days": len(twice),
                **({"other_days": dg.MetadataValue.json(dict(list(twice.items())[:20]))} if twice else {})}


def _commit(context: dg.AssetExecutionContext, layer: Layer, bronze_storage: BronzeStorage, pncp_api: PncpApi,
            asset: str, raw: str, metrics: StepMetrics) -> Iterator[Any]:
    """Stage and claim each hour's delta in time order (steps 1-3 of the commit protocol) and return them:
    the IO manager publishes them (step 4). Then each hour's check verdict, on Bronze as published.

    Run without its sweep asset (the UI's Materialize on the delta asset alone, a retry from this step), it
    gets its hours' sweeps itself, as the sweep asset would (a recent stored one, or a new one, in the
    `pncp_api` pool that this asset holds too), rather than fail on a sweep nobody made."""
    store = bronze_storage.object_store()
    sweeps = SweepStore(store, layer, logger=context.log)
    committer = DeltaCommitter(store, layer, logger=context.log, compression=bronze_storage.compression)
    hours = sorted(context.partition_keys, key=layout.parse_partition_key)  # in order: records in their hour
    # Hours whose sweep this run's sweep asset did not choose: it is not in the run (Materialize on this asset
    # alone, or a retry from this step). They get theirs as the sweep asset would.
    unswept = [h for h in hours if sweeps.assigned_by(h) != run_id_of(context)]
    served: dict[str, StoredSweep] = {}
    if unswept:
        context.log.info(f"{raw} did not run for {len(unswept)} of the hours in this run: {asset} gets their "
                         "sweeps itself")
        served = _sweep_hours(context, layer, pncp_api, sweeps, unswept, metrics)
    deltas = Deltas(layer, {})
    filed = 0
    last_of_day: dict[dt.date, tuple[str, StoredSweep]] = {}
    hours_figures: dict[str, dict[str, float]] = {}  # to the metrics once the deltas are published
    cross = _CrossFeed(store, layer, context.log)
    for hour in hours:
        sweep = served.get(hour) or sweeps.assigned(hour)
        result = committer.commit(hour, sweep.records(), context.run.run_id, swept_at=sweep.started)
        if result.output is not None:
            deltas.by_hour[hour] = result.output
        filed += len(result.new_ids)
        context.add_asset_metadata({**_delta_metadata(result, layer), **cross.after(hour, sweep, result)},
                                   partition_key=hour)
        hours_figures[hour] = hour_figures(result)
        last_of_day[layout.parse_partition_key(hour).date()] = (hour, sweep)
    final = _run_tags(context).get("pncp/resweep_age") == str(max(ledger.RESWEEP_AGES))
    closing: dict[str, tuple[ledger.DayVerdict, bool]] = {}
    for day, (hour, sweep) in last_of_day.items():  # what PNCP counted, beside what Bronze holds
        entry, state = ledger.record(committer.state, layer, day, sweep, hour)
        context.add_asset_metadata(_ledger_metadata(entry, day), partition_key=hour)
        verdict = ledger.judge(state, day)
        if verdict is not None and hour == layout.day_hours(day)[-1]:  # the day as a whole, by its latest closing
            closing[hour] = (verdict, final)
    yield dg.Output(deltas)  # handed to the IO manager, which publishes each hour's delta before we go on
    for hour, figures in hours_figures.items():
        metrics.hour(hour, figures)
    reports = ConsistencyCheck(store, layer, context.log).check_hours(hours, published=deltas.ids())
    if all(r.passed for r in reports.values()):  # the document's line; a failure speaks in its verdict
        context.log.info(f"Validation passed: {filed} NEW {layer.noun if layer.versioned else 'records'} ingested"
                         + (f" in {len(hours)} hours" if len(hours) > 1 else ""))
    yield from check_evaluations(context.instance, reports, "no_duplicates", asset, metrics=metrics)
    yield from _check_done(context.op_execution_context, "no_duplicates")
    if layer.link_field is not None:
        links = link_reports(store, layer, hours, index=cross.index_of(LINKED_FEED))
        yield from check_evaluations(context.instance, links, LINKS_CHECK, asset, _link_verdict, blocking=False,
                                     metrics=metrics)
        yield from _check_done(context.op_execution_context, LINKS_CHECK)
    yield from check_evaluations(context.instance, closing, COMPLETENESS_CHECK, asset, _completeness_verdict,
                                 blocking=False, metrics=metrics)
    yield from _check_done(context.op_execution_context, COMPLETENESS_CHECK)


def _check_done(context: dg.OpExecutionContext, check_name: str) -> Iterator[dg.Output]:
    """The check's own (valueless) outputs, which Dagster expects once per step; the verdicts themselves
    went out as one `AssetCheckEvaluation` per hour."""
    for name, spec in context.assets_def.check_specs_by_output_name.items():
        if spec.name == check_name:
            yield dg.Output(None, output_name=name)


def _finalize(context: dg.AssetExecutionContext, layer: Layer, bronze_storage: BronzeStorage,
              metrics: StepMetrics) -> dg.MaterializeResult:
    """Confirm the hours' claims; then each day's figures, from its state as this run leaves it, to the daily
    view (a materialisation of the day's partition of `<layer>_daily_figures`) and to the metrics."""
    committer = DeltaCommitter(bronze_storage.object_store(), layer, logger=context.log)
    for day, summary in committer.finalize_hours(context.partition_keys).items():
        context.log.info(f"State {layer.source} {day}: {summary['total_processed']} {layer.noun} processed in "
                         f"{summary['executions']} executions")
        for hour, ids in summary["hour_ids"].items():
            context.add_asset_metadata({
                "hour_ids": ids,
                "day_total_processed": summary["total_processed"],
                "executions": summary["executions"],
                "orphans_removed": summary["orphans_removed"],
                "state_key": dg.MetadataValue.path(layout.state_key(layer.source, day)),
            }, partition_key=hour)
        figures = day_figures.of_day(committer.state.load_fresh(layer, day).state, day)
        context.log_event(dg.AssetMaterialization(asset_key=AssetNames.of(layer).figures, partition=day.isoformat(),
                                                  metadata=figures.as_metadata()))
        metrics.day(day, figures.as_metrics())
    return dg.MaterializeResult()


@dataclass(frozen=True)
class AssetNames:
    """The rule that names a layer's Dagster definitions from its prefix (`layers.Layer.source`): so the
    contratações' first-seen layer `pncp` keeps the names of the original design (`pncp_raw_pages`,
    `pncp_new_records`, `pncp_daily_state`), and `pncp_contratos` gets `pncp_contratos_raw_pages`, ...
    The check each delta asset carries is named the same on every layer (`no_duplicates`, `bronze_consistent`,
    `contratacao_links`); `check` is the op that runs `bronze_consistent` in the job `pncp_checks`."""

    raw: str
    deltas: str
    state: str
    check: str
    figures: str  # the daily view: one partition per day, materialised by the state asset

    @classmethod
    def of(cls, layer: Layer) -> "AssetNames":
        stem = layer.source
        return cls(f"{stem}_raw_pages", f"{stem}_new_records", f"{stem}_daily_state", f"{stem}_bronze_consistent",
                   f"{stem}_daily_figures")


@dataclass(frozen=True)
class LayerGraph:
    """A layer's three assets (its sweep as fetched, its hourly deltas with their `no_duplicates` check, its
    day state), its standalone `bronze_consistent` check and its daily view (`figures`: an asset no job
    selects, whose day partitions the state asset materialises with the day's figures)."""

    layer: Layer
    raw: dg.AssetsDefinition
    deltas: dg.AssetsDefinition
    state: dg.AssetsDefinition
    check: dg.AssetChecksDefinition
    figures: dg.AssetSpec

    @property
    def assets(self) -> list[dg.AssetsDefinition]:
        return [self.raw, self.deltas, self.state]


@chosen_apis()
def layer_graph(layer: Layer, points_at: Sequence[LayerGraph] = ()) -> LayerGraph:
    """The three assets and the standalone check of a layer, named by `AssetNames` and described from the
    layer; every layer shares the partitions, pools and backfill policy, so one run of the job serves all
    layers' hours and the API budget stays one. `points_at`: the graphs of the layers holding the contratações
    this one's records point at; its deltas come after theirs in a run, so that the links check sees the
    same hours' contratações."""
    names = AssetNames.of(layer)
    raw, deltas, state, check = names.raw, names.deltas, names.state, names.check
    what = layer.title.split(",")[0]  # "contratações", "contratos", "atas"
    key = f"{layer.id_field}@dataAtualizacaoGlobal (column _version_key)" if layer.versioned else layer.id_field
    files = layout.delta_key_pattern(layer.source)
    sweep_description = (
        f"Every page of the sweep of day(H) of {layer.endpoint.path} ("
        + ("included or changed that day, each as it is now" if layer.versioned else "published that day")
        + f"), as fetched, under {layer.source}/_raw/. One sweep per day serves all the hours of a run, and a "
        "recent sweep serves later runs. Holds the pncp_api pool: no two runs ever talk to PNCP at once.")
    delta_description = (
        ("The versions of " if layer.versioned else "The ") + f"{what} first seen in hour H ("
        + ("changed" if layer.versioned else "published") + " before its end, never seen by the day's state, "
        f"plus what H already held), keyed by {key}. {files}"
        + (" (day = the day of the change)" if layer.versioned else ""))
    check_description = (f"No {'version' if layer.versioned else 'record'} twice in H's delta, none in another "
                         "delta of the day, and the state's keys equal the day's Bronze keys")
    common = {"partitions_def": hourly_partitions, "backfill_policy": BACKFILL_POLICY, "group_name": GROUP}

    @dg.asset(name=raw, pool=API_POOL, kinds={"python", "s3"}, description=sweep_description, **common)
    def raw_pages(context: dg.AssetExecutionContext, pncp_api: PncpApi, bronze_storage: BronzeStorage,
                  metrics_gateway: MetricsGateway) -> dg.MaterializeResult:
        return _sweep(context, layer, pncp_api, bronze_storage, metrics_gateway)

    @dg.asset(
        name=deltas,
        # The API budget too: launched alone, it sweeps its hours itself (`_commit`). Filing a day takes seconds
        # against minutes for its sweep at PNCP's pacing, so holding the pool while filing costs little.
        pool=API_POOL,
        io_manager_key="bronze_io_manager",  # publishes the claimed deltas (step 4) and reads them back
        metadata={SOURCE_METADATA: layer.source},
        kinds={"python", "parquet"},
        deps=[raw_pages, *(graph.deltas for graph in points_at)],
        check_specs=[dg.AssetCheckSpec("no_duplicates", asset=deltas, blocking=True,
                                       partitions_def=hourly_partitions, description=check_description),
                     dg.AssetCheckSpec(COMPLETENESS_CHECK, asset=deltas, blocking=False,
                                       partitions_def=hourly_partitions,
                                       description="The day as a whole, on its 23:00 (other hours are not judged): "
                                       "whether Bronze holds every record PNCP counted for the day at its latest "
                                       "closing sweep (day close, re-sweeps), per modalidade (the completeness "
                                       "ledger)"),
                     *([dg.AssetCheckSpec(LINKS_CHECK, asset=deltas, blocking=False, partitions_def=hourly_partitions,
                                          description=f"How many of H's records point at a contratação "
                                          f"({layer.link_field}) that Bronze does not hold (pncp/ or pncp_versions/, "
                                          f"within {LOOKBACK_DAYS} days), with examples: reported, never dropped")]
                       if layer.link_field else [])],
        description=delta_description,
        **common,
    )
    def new_rows(context: dg.AssetExecutionContext, bronze_storage: BronzeStorage, pncp_api: PncpApi,
                 metrics_gateway: MetricsGateway) -> Iterator[Any]:
        with StepMetrics(context, layer, metrics_gateway) as metrics:
            yield from _commit(context, layer, bronze_storage, pncp_api, deltas, raw, metrics)

    @dg.asset(
        name=state,
        pool=STATE_POOL,
        deps=[new_rows],
        kinds={"python", "json"},
        description=f"The day's state file ({layer.source}/_state/...): H's claim confirmed once its delta is "
        "safely in Bronze, its staged file retired. One writer at a time (pool pncp_state); compare-and-swap "
        "regardless.",
        **common,
    )
    def day_state(context: dg.AssetExecutionContext, bronze_storage: BronzeStorage,
                  metrics_gateway: MetricsGateway) -> dg.MaterializeResult:
        with StepMetrics(context, layer, metrics_gateway) as metrics:
            return _finalize(context, layer, bronze_storage, metrics)

    @dg.multi_asset_check(
        name=check,
        specs=[dg.AssetCheckSpec("bronze_consistent", asset=deltas, partitions_def=hourly_partitions, blocking=True,
                                 description="The no_duplicates rules over Bronze as it is, without ingesting "
                                 "(job pncp_checks)")],
    )
    def consistent(context: dg.AssetCheckExecutionContext, bronze_storage: BronzeStorage,
                   metrics_gateway: MetricsGateway) -> Iterator[Any]:
        checker = ConsistencyCheck(bronze_storage.object_store(), layer, logger=context.log)
        reports = checker.check_hours(context.op_execution_context.partition_keys)
        with StepMetrics(context, layer, metrics_gateway) as metrics:
            yield from check_evaluations(context.instance, reports, "bronze_consistent", deltas, metrics=metrics)
        yield from _check_done(context.op_execution_context, "bronze_consistent")

    figures = dg.AssetSpec(
        names.figures, deps=[state], partitions_def=daily_partitions, group_name=GROUP, kinds={"json"},
        description=f"The day's figures for {layer.source}, recorded by every run that files one of its hours (from "
        "the day's state, by its state asset): executions, new records and new records per execution, the original "
        "document's filter rate (duplicates filtered / input, percent), state IDs and bytes, PNCP's count and "
        "Bronze's share of it, and, once the day has a closing sweep, how complete it is (complete_pct). "
        "Overview, Metadata, Plots: each over the days (by partition) or over time (by event).")
    return LayerGraph(layer, raw_pages, new_rows, day_state, consistent, figures)


def layer_graphs(layers: Sequence[Layer] = LAYERS) -> tuple[LayerGraph, ...]:
    """The graph of every layer of a registry; a layer with a `link_field` comes after the layers its
    records point at (`layers.linked_layers`)."""
    linked = linked_layers(layers)
    graphs: dict[str, LayerGraph] = {}
    for layer in sorted(layers, key=lambda layer: layer.link_field is not None):
        points_at = [graphs[t.source] for t in linked] if layer.link_field else []
        graphs[layer.source] = layer_graph(layer, points_at=points_at)
    return tuple(graphs[layer.source] for layer in layers)


LAYER_GRAPHS = layer_graphs(LAYERS)
GRAPHS = {graph.layer.source: graph for graph in LAYER_GRAPHS}
# The original design's names, for the contratações' first-seen layer.
first_seen, versions = GRAPHS[FIRST_SEEN.source], GRAPHS[VERSIONS.source]
pncp_raw_pages, pncp_new_records, pncp_daily_state = first_seen.assets
