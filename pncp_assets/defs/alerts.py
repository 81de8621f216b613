"""Knowing when the data stops: a freshness check per delta asset, the sensor that has the daemon evaluate
them, and alerts to a webhook (`AlertWebhook`, PNCP_ALERT_WEBHOOK_URL) for a failed run and for a stale asset.

Freshness: hour H of every layer's delta asset (`pncp_new_records`, ...) is due `layout.DUE_AFTER_END` after it ends
(H+1:30, Brasília time; its scheduled run starts at H+1:05). Dagster's time-partition freshness check fails
once a due hour has no materialisation; `pncp_freshness_checks` evaluates it when it can next be overdue, and
every run of the hourly job evaluates it too (the job selects the assets' checks), so it passes again as soon
as the pipeline catches up.

Alerts: `pncp_run_failure_alert` posts one message per failed run of this code location (schedule, backfill,
checks job, UI), naming the run, its job and partitions and the failed steps' errors; runs that failed because
PNCP stayed down post one message per outage (`outage.py`), not one per run.
`pncp_incomplete_day_alert` posts one message per day whose completeness verdict still fails at its last
re-sweep (`ledger.RESWEEP_AGES`), naming each layer short and why; earlier failing verdicts post nothing (a
re-sweep may still fill the day).
`pncp_stale_asset_alert` posts one message when freshness checks go from passing (or never run) to failing,
naming the assets and the hours they miss (all the layers at once when the pipeline stops, and why, when PNCP
is declared down), and one when they pass again; a check that stays failed posts nothing more.
With PNCP_ALERT_WEBHOOK_URL set the three sensors run by default; without it they are stopped by default,
their description says alerts are off and how to turn them on, and every process that loads the code location
(the daemon among them) logs it once at start (a tick that runs all the same skips, saying why).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg

from pncp_assets import layout
from pncp_assets.defs import outage
from pncp_assets.defs.assets import COMPLETENESS_CHECK, LAYER_GRAPHS, chosen_apis
from pncp_assets.defs.partitions import TIMEZONE
from pncp_assets.defs.resources import AlertWebhook
from pncp_assets.ledger import RESWEEP_AGES

ALERTS_OFF = "PNCP_ALERT_WEBHOOK_URL is not set: alerts are off"
DEADLINE_CRON = f"{layout.DUE_AFTER_END.seconds // 60} * * * *"  # each hour at :30: the hour before is due

with chosen_apis():
    freshness_checks = dg.build_time_partition_freshness_checks(
        assets=[graph.deltas for graph in LAYER_GRAPHS], deadline_cron=DEADLINE_CRON, timezone=TIMEZONE)
    freshness_sensor = dg.build_sensor_for_freshness_checks(
        freshness_checks=freshness_checks, name="pncp_freshness_checks",
        default_status=dg.DefaultSensorStatus.RUNNING)


def _partitions_of(tags: Mapping[str, str]) -> str:
    if "dagster/partition" in tags:
        return tags["dagster/partition"]
    start, end = tags.get("dagster/asset_partition_range_start"), tags.get("dagster/asset_partition_range_end")
    return f"{start} .. {end}" if start and end else "no partition"


def run_failure_text(run_id: str, job: str, tags: Mapping[str, str], errors: Sequence[str]) -> str:
    """The message for a failed run: which run, which hours, what failed."""
    text = f"pncp_assets: run {run_id} of job {job} ({_partitions_of(tags)}) failed"
    if "dagster/retry_number" in tags:
        text += f" (retry {tags['dagster/retry_number']})"
    return text + (": " + " | ".join(e[:300] for e in errors[:3]) if errors else ".")


def _root_cause(error: Any) -> str:
    """The user's own error under Dagster's wrappers (`DagsterExecutionStepExecutionError` ...)."""
    while getattr(error, "cause", None) is not None:
        error = error.cause
    return error.message.strip()


ALERTS_OFF_NOTE = ("OFF: PNCP_ALERT_WEBHOOK_URL is not set. To turn alerts on, set it to a webhook that takes a "
                   "JSON POST with a `text` (Slack, Mattermost, Google Chat, Rocket.Chat) where the code location, "
                   "the webserver and the daemon run, and restart them. ")


def alert_sensors(enabled: bool) -> list[dg.SensorDefinition]:
    """The two alert sensors: running by default when a webhook is set (`enabled`), otherwise stopped, their
    description saying alerts are off and how to turn them on, so that the UI does not show them "Running"
    while they post nothing."""
    status = dg.DefaultSensorStatus.RUNNING if enabled else dg.DefaultSensorStatus.STOPPED
    note = "" if enabled else ALERTS_OFF_NOTE
    if not enabled:
        # Once per process that loads the code location: the daemon's log says it at start, not only the UI.
        dg.get_dagster_logger("pncp_assets").warning(f"Alert sensors stopped: {ALERTS_OFF_NOTE.removeprefix('OFF: ')}")
    failure = dg.run_failure_sensor(
        name="pncp_run_failure_alert", default_status=status,
        description=note + "Posts a message to PNCP_ALERT_WEBHOOK_URL for every failed run of this code location: "
        "the run, its job, its partitions, the failed steps' errors.")(run_failure_alert)
    stale = dg.sensor(
        name="pncp_stale_asset_alert", default_status=status, minimum_interval_seconds=30,
        description=note + "Posts a message to PNCP_ALERT_WEBHOOK_URL when a delta asset's freshness check fails "
        "(a due hour is missing), and when it passes again.")(stale_asset_alert)
    incomplete = dg.sensor(
        name="pncp_incomplete_day_alert", default_status=status, minimum_interval_seconds=300,
        description=note + "Posts one message to PNCP_ALERT_WEBHOOK_URL per day still incomplete after its last "
        f"re-sweep ({max(RESWEEP_AGES)} days after its close): its completeness verdicts then, per layer."
    )(incomplete_day_alert)
    return [failure, stale, incomplete]


def run_failure_alert(context: dg.RunFailureSensorContext, alert_webhook: AlertWebhook) -> dg.SkipReason | None:
    """Announce a failed run (the body of the sensor `pncp_run_failure_alert`)."""
    if not alert_webhook.enabled:
        return dg.SkipReason(ALERTS_OFF)
    run = context.dagster_run
    if outage.UNAVAILABLE_TAG in run.tags:  # failed because PNCP stayed down: one message per outage
        down = outage.first_announcement(context.instance)
        if down is None:
            return dg.SkipReason(f"Run {run.run_id} failed in the PNCP outage already announced")
        text = (f"pncp_assets: PNCP unavailable since {down.since_time:%Y-%m-%d %H:%M} UTC: run {run.run_id} of "
                f"job {run.job_name} ({_partitions_of(run.tags)}) waited it out as long as it may and failed. The "
                "schedules launch nothing until PNCP answers (each tick asks it once), then run the hours missed; "
                "runs failing in this outage post nothing more.")
        alert_webhook.send(text, event="pncp_unavailable", run_id=run.run_id, since=down.since)
        context.log.info(f"Alert sent: PNCP unavailable since {down.since}")
        return None
    errors = [f"{e.step_key}: {_root_cause(e.event_specific_data.error)}"  # type: ignore[union-attr]
              for e in context.get_step_failure_events()
              if e.event_specific_data is not None and e.event_specific_data.error is not None]  # type: ignore[union-attr]
    if not errors and context.failure_event.message:
        errors = [context.failure_event.message]
    text = run_failure_text(run.run_id, run.job_name, run.tags, errors)
    alert_webhook.send(text, event="run_failure", run_id=run.run_id, job=run.job_name,
                       partitions=_partitions_of(run.tags))
    context.log.info(f"Alert sent: run {run.run_id} failed")
    return None


def freshness_transitions(cursor: Mapping[str, Any], latest: Mapping[str, tuple[int, bool, str]]
                          ) -> tuple[list[tuple[str, bool, str]], dict[str, Any]]:
    """Which freshness verdicts to announce. `cursor`: check -> [storage id, passed] of the last verdict
    seen; `latest`: check -> (storage id, passed, description) of its latest verdict. A verdict is announced
    when it is new and changes the state: failing after passing (or after nothing), passing after failing.
    Returns [(check, passed, description)] and the new cursor."""
    announce: list[tuple[str, bool, str]] = []
    seen = {key: list(value) for key, value in cursor.items()}
    for key, (storage_id, passed, description) in sorted(latest.items()):
        previous = seen.get(key)
        if previous is not None and storage_id <= previous[0]:
            continue
        was_passing = previous is None or previous[1]  # nothing seen yet counts as passing
        if passed != was_passing:
            announce.append((key, passed, description))
        seen[key] = [storage_id, passed]
    return announce, seen


def freshness_text(changed: Sequence[tuple[str, str]], passed: bool, down: outage.Outage | None = None) -> str:
    """One message for the assets whose freshness changed the same way at once: (asset, check description)."""
    subject = f"pncp_assets: {', '.join(asset for asset, _ in changed)} {'is' if len(changed) == 1 else 'are'}"
    details = " | ".join(f"{asset}: {description[:200]}" for asset, description in changed)
    if passed:
        return f"{subject} fresh again. {details}"
    why = (f" PNCP unavailable since {down.since_time:%Y-%m-%d %H:%M} UTC: the hours missed run once it answers."
           if down is not None else "")
    return (f"{subject} stale: a due hour is missing (each hour is due {layout.DUE_AFTER_END.seconds // 60} min "
            f"after it ends).{why} {details}")


def stale_asset_alert(context: dg.SensorEvaluationContext, alert_webhook: AlertWebhook) -> dg.SkipReason:
    """Announce freshness changes (the body of the sensor `pncp_stale_asset_alert`)."""
    if not alert_webhook.enabled:
        return dg.SkipReason(ALERTS_OFF)
    keys = [spec.key for checks in freshness_checks for spec in checks.check_specs]
    summaries = context.instance.event_log_storage.get_asset_check_summary_records(keys)
    latest: dict[str, tuple[int, bool, str]] = {}
    for key, summary in summaries.items():
        record = summary.last_completed_check_execution_record
        evaluation = record.event.asset_check_evaluation if record and record.event else None
        if record is not None and evaluation is not None:
            latest[key.to_user_string()] = (record.id, evaluation.passed, evaluation.description or "")
    announce, cursor = freshness_transitions(json.loads(context.cursor or "{}"), latest)
    for passed in (False, True):  # one message for the assets gone stale at this tick, one for those fresh again
        changed = [(dg.AssetCheckKey.from_user_string(key).asset_key.to_user_string(), description)
                   for key, now_passing, description in announce if now_passing == passed]
        if changed:
            text = freshness_text(changed, passed, None if passed else outage.declared(context.instance))
            alert_webhook.send(text, event="fresh_again" if passed else "stale_asset",
                               assets=[asset for asset, _ in changed])
            context.log.info(f"Alert sent: {', '.join(a for a, _ in changed)} {'fresh again' if passed else 'stale'}")
    # Only once every message went out: a webhook error fails the tick and the next tick sends again.
    context.update_cursor(json.dumps(cursor, sort_keys=True))
    return dg.SkipReason(f"{len(announce)} freshness change(s) announced" if announce else "no freshness change")


def final_shortfalls(records: Sequence[tuple[int, str, str, bool, bool, str]], cursor: Mapping[str, Any]
                     ) -> tuple[dict[str, list[tuple[str, str]]], dict[str, Any]]:
    """Which days to announce as incomplete for good. `records`: (storage id, asset, partition, passed, final,
    description) of completeness verdicts; `cursor`: {"after": the last id seen, "days": days announced}. A day
    is announced once, when a verdict of its last re-sweep (`final`) fails, naming every layer short then.
    Returns day -> [(asset, description)] and the new cursor."""
    after, announced = int(cursor.get("after", 0)), list(cursor.get("days", []))
    found: dict[str, list[tuple[str, str]]] = {}
    for storage_id, asset, partition, passed, final, description in sorted(records):
        after = max(after, storage_id)
        day = partition[:10]
        if final and not passed and day not in announced:
            found.setdefault(day, []).append((asset, description))
    announced = (announced + sorted(found))[-400:]  # a year of days is plenty to never repeat one
    return found, {"after": after, "days": announced}


def incomplete_day_alert(context: dg.SensorEvaluationContext, alert_webhook: AlertWebhook) -> dg.SkipReason:
    """Announce each day still incomplete after its last re-sweep (the body of `pncp_incomplete_day_alert`)."""
    if not alert_webhook.enabled:
        return dg.SkipReason(ALERTS_OFF)
    cursor = json.loads(context.cursor or "{}")
    records = []
    for graph in LAYER_GRAPHS:
        key = dg.AssetCheckKey(graph.deltas.key, COMPLETENESS_CHECK)
        for record in context.instance.event_log_storage.get_asset_check_execution_history(key, limit=100):
            evaluation = record.event.asset_check_evaluation if record.event else None
            if record.id <= int(cursor.get("after", 0)) or evaluation is None:
                continue
            final = evaluation.metadata.get("final")
            records.append((record.id, key.asset_key.to_user_string(), evaluation.partition or "", evaluation.passed,
                            bool(final and final.value), evaluation.description or ""))
    found, cursor = final_shortfalls(records, cursor)
    for day, short in found.items():
        text = (f"pncp_assets: {day} is still incomplete after its last re-sweep ({max(RESWEEP_AGES)} days after "
                "its close): " + " | ".join(f"{asset}: {description[:300]}" for asset, description in short))
        alert_webhook.send(text, event="incomplete_day", day=day, assets=[asset for asset, _ in short])
        context.log.info(f"Alert sent: {day} incomplete")
    context.update_cursor(json.dumps(cursor, sort_keys=True))
    return dg.SkipReason(f"{len(found)} incomplete day(s) announced" if found else "no day newly incomplete")
