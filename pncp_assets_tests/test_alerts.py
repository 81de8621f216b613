"""Freshness and alerts: the freshness checks on the delta assets, the webhook alerts for a failed run and
for a stale asset (sensors evaluated as the daemon evaluates them, on a real instance, posting to a local
HTTP server). The same sensors under a real daemon: `test_e2e.py`."""

from __future__ import annotations

import json
import warnings

import dagster as dg
import pytest
from pytest_httpserver import HTTPServer

from pncp_assets.config import ConfigError
from pncp_assets.defs.alerts import (
    ALERTS_OFF,
    DEADLINE_CRON,
    alert_sensors,
    freshness_checks,
    freshness_transitions,
)
from pncp_assets.defs.assets import LAYER_GRAPHS
from pncp_assets.defs.environment import alert_webhook
from pncp_assets.defs.resources import AlertWebhook
from pncp_assets.webhook import WebhookError, post_message

warnings.filterwarnings("ignore", category=dg.PreviewWarning)
DELTAS = sorted(graph.deltas.key.to_user_string() for graph in LAYER_GRAPHS)
SECRET_PATH = "/hooks/T0FAKE/B0FAKE/FakeWebhookToken0123456789"
# As the code location builds them with a URL.
run_failure_alert, stale_asset_alert, incomplete_day_alert = alert_sensors(enabled=True)


def messages(server: HTTPServer) -> list[dict]:
    return [json.loads(request.get_data()) for request, _ in server.log]


@pytest.fixture
def hook(httpserver: HTTPServer) -> AlertWebhook:
    httpserver.expect_request(SECRET_PATH, method="POST").respond_with_data("ok")
    return AlertWebhook(url=httpserver.url_for(SECRET_PATH))


def test_the_freshness_deadline_is_each_hour_due_at_half_past_the_next():
    assert DEADLINE_CRON == "30 * * * *"
    [checks] = freshness_checks
    assert sorted(spec.key.asset_key.path[-1] for spec in checks.check_specs) == DELTAS  # one per delta asset


def test_freshness_changes_are_announced_once_each_way():
    cursor: dict = {}
    announce, cursor = freshness_transitions(cursor, {"a": (5, True, "fresh")})
    assert announce == []  # passing from the start: nothing to say
    announce, cursor = freshness_transitions(cursor, {"a": (9, False, "overdue"), "b": (3, False, "never")})
    assert announce == [("a", False, "overdue"), ("b", False, "never")]
    announce, cursor = freshness_transitions(cursor, {"a": (12, False, "still overdue"), "b": (3, False, "never")})
    assert announce == []  # still failing, or the same verdict again: no repeat
    announce, cursor = freshness_transitions(cursor, {"a": (15, True, "fresh"), "b": (3, False, "never")})
    assert announce == [("a", True, "fresh")]
    assert cursor == {"a": [15, True], "b": [3, False]}


def _stale_instance() -> dg.DagsterInstance:
    """An instance whose freshness checks ran and failed: no due hour of either delta asset materialised."""
    from pncp_assets.defs.partitions import hourly_partitions

    instance = dg.DagsterInstance.ephemeral()
    assets = [dg.AssetSpec(name, partitions_def=hourly_partitions) for name in DELTAS]
    defs = dg.Definitions(assets=assets, asset_checks=freshness_checks)
    keys = [spec.key for checks in freshness_checks for spec in checks.check_specs]
    result = defs.resolve_implicit_global_asset_job_def().get_subset(asset_check_selection=set(keys)) \
        .execute_in_process(instance=instance)
    assert [c.passed for c in result.get_asset_check_evaluations()] == [False] * len(DELTAS)
    return instance


def test_stale_assets_are_announced_once_in_one_message_naming_them(httpserver, hook):
    instance = _stale_instance()
    context = dg.build_sensor_context(instance=instance, resources={"alert_webhook": hook})
    stale_asset_alert(context)
    [sent] = messages(httpserver)  # every layer stale at once (the pipeline stopped): one message
    assert sent["event"] == "stale_asset" and sorted(sent["assets"]) == DELTAS
    assert sent["text"].startswith(f"pncp_assets: {', '.join(sorted(DELTAS))} are stale")
    assert sent["text"].count("expect partition") == len(DELTAS)  # each asset's missing hour
    again = dg.build_sensor_context(instance=instance, resources={"alert_webhook": hook}, cursor=context.cursor)
    stale_asset_alert(again)
    assert len(httpserver.log) == 1  # still stale: no second message


def test_a_stale_message_says_when_pncp_is_declared_down():
    import datetime as dt

    from pncp_assets.defs.alerts import freshness_text
    from pncp_assets.defs.outage import Outage

    down = Outage(dt.datetime(2026, 3, 2, 14, 2, tzinfo=dt.UTC).isoformat(), "run1")
    text = freshness_text([("pncp_new_records", "overdue")], passed=False, down=down)
    assert text.startswith("pncp_assets: pncp_new_records is stale")
    assert "PNCP unavailable since 2026-03-02 14:02 UTC" in text
    assert "PNCP unavailable" not in freshness_text([("pncp_new_records", "overdue")], passed=False)


def test_a_failed_run_is_announced_naming_the_run_and_its_error(httpserver, hook):
    @dg.asset(partitions_def=dg.HourlyPartitionsDefinition(start_date="2025-10-01-00:00"))
    def broken() -> None:
        raise RuntimeError("the sweep of 2025-10-22 failed")

    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([broken], partition_key="2025-10-22-10:00", instance=instance, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
    context = dg.build_run_status_sensor_context(sensor_name="pncp_run_failure_alert", dagster_instance=instance,
                                                 dagster_run=result.dagster_run, dagster_event=failure,
                                                 resources={"alert_webhook": hook}).for_run_failure()
    run_failure_alert(context)
    [sent] = messages(httpserver)
    assert sent["event"] == "run_failure" and sent["run_id"] == result.run_id
    assert sent["text"].startswith(f"pncp_assets: run {result.run_id} of job __ephemeral_asset_job__ "
                                   "(2025-10-22-10:00) failed: broken:")
    assert "the sweep of 2025-10-22 failed" in sent["text"]


def test_without_a_webhook_alerts_are_off_and_say_so():
    instance = _stale_instance()
    skipped = stale_asset_alert(dg.build_sensor_context(instance=instance, resources={"alert_webhook": AlertWebhook()}))
    assert isinstance(skipped, dg.SkipReason) and skipped.skip_message == ALERTS_OFF
    # In the UI: stopped, not "Running", and the description says why and how to turn them on.
    for sensor in alert_sensors(enabled=False):
        assert sensor.default_status == dg.DefaultSensorStatus.STOPPED
        assert sensor.description.startswith("OFF: PNCP_ALERT_WEBHOOK_URL is not set. To turn alerts on, set it")
    assert all(s.default_status == dg.DefaultSensorStatus.RUNNING and not s.description.startswith("OFF")
               for s in alert_sensors(enabled=True))


def test_the_code_location_turns_the_alert_sensors_on_only_with_a_webhook():
    import os
    import subprocess
    import sys

    code = ("from pncp_assets.definitions import defs; "
            "print(sorted((s.name, s.default_status.value) for s in defs.sensors))")
    env = {k: v for k, v in os.environ.items() if k != "PNCP_ALERT_WEBHOOK_URL"}
    stopped = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    started = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={**env, "PNCP_ALERT_WEBHOOK_URL": "https://hooks.example/x"})
    off, on = stopped.stdout, started.stdout
    # Said once at start in the log of the process loading the code (the daemon's among them); not when on.
    assert stopped.stderr.count("Alert sensors stopped: PNCP_ALERT_WEBHOOK_URL is not set") == 1
    assert "Alert sensors stopped" not in started.stderr
    assert "('pncp_run_failure_alert', 'STOPPED')" in off and "('pncp_stale_asset_alert', 'STOPPED')" in off
    assert "('pncp_freshness_checks', 'RUNNING')" in off  # freshness itself is judged either way
    assert "('pncp_run_failure_alert', 'RUNNING')" in on and "('pncp_stale_asset_alert', 'RUNNING')" in on
    assert "('pncp_incomplete_day_alert', 'STOPPED')" in off and "('pncp_incomplete_day_alert', 'RUNNING')" in on


def test_a_day_still_short_after_its_last_resweep_is_announced_once(httpserver, hook, tmp_path):
    import datetime as dt

    from pncp_assets.layers import FIRST_SEEN
    from pncp_assets.ledger import RESWEEP_AGES
    from pncp_assets.pncp.simulator import RunningSimulator, SimulatorConfig
    from pncp_assets.state import StateManager
    from pncp_assets.storage import LocalObjectStore
    from pncp_assets_tests.support.pipeline import Pipeline, end_of_hour, partition, storage_resource

    day = dt.date(2025, 10, 22)
    store = LocalObjectStore(tmp_path / "bronze")
    with RunningSimulator(SimulatorConfig(seed=52, volume=120)) as sim:
        p = Pipeline(sim, store, storage_resource(store))
        closed = end_of_hour(day + dt.timedelta(days=1), 5)
        assert p.run_range(partition(day, 0), partition(day, 23), now=closed).success

        def count_three_more(state):  # PNCP's count three above what Bronze holds, as a later sweep records it
            latest = state.extra["ledger"][-1]
            latest["modalidades"]["8"][0] += 3
            return None, True

        StateManager(store).transact(FIRST_SEEN, day, count_three_more)
        p.sweep_max_age_minutes = 1e6  # served by the stored sweep: the ledger's count stands

        def sensor_after(age: int, cursor: str | None) -> str | None:
            assert p.run(partition(day, 23), tags={"pncp/resweep_age": str(age)}).success
            context = dg.build_sensor_context(instance=p.instance, resources={"alert_webhook": hook}, cursor=cursor)
            incomplete_day_alert(context)
            return context.cursor

        cursor = sensor_after(RESWEEP_AGES[-2], None)
        assert messages(httpserver) == []  # short, but a re-sweep is still to come
        cursor = sensor_after(RESWEEP_AGES[-1], cursor)
        [sent] = messages(httpserver)
        assert sent["event"] == "incomplete_day" and sent["day"] == "2025-10-22"
        assert sent["assets"] == ["pncp_new_records"]
        assert sent["text"].startswith("pncp_assets: 2025-10-22 is still incomplete after its last re-sweep")
        assert "modalidade 8" in sent["text"] and "3 short" in sent["text"]
        sensor_after(RESWEEP_AGES[-1], cursor)  # judged again, still short: not said twice
        assert len(messages(httpserver)) == 1


def test_the_webhook_url_is_read_from_the_environment_never_shown(monkeypatch):
    monkeypatch.delenv("PNCP_ALERT_WEBHOOK_URL", raising=False)
    assert not alert_webhook().enabled
    monkeypatch.setenv("PNCP_ALERT_WEBHOOK_URL", f"https://hooks.example.org{SECRET_PATH}")
    bound = alert_webhook()
    assert bound.enabled and SECRET_PATH not in repr(bound)  # config holds the variable's name, not the URL
    monkeypatch.setenv("PNCP_ALERT_WEBHOOK_URL", f"hooks.example.org{SECRET_PATH}")
    with pytest.raises(ConfigError, match="PNCP_ALERT_WEBHOOK_URL is not an http") as refused:
        alert_webhook()
    assert SECRET_PATH not in str(refused.value)


def test_a_webhook_that_fails_is_an_error_that_never_quotes_its_url(httpserver):
    httpserver.expect_request(SECRET_PATH, method="POST").respond_with_data("no", status=500)
    with pytest.raises(WebhookError, match="answered HTTP 500") as answered:
        post_message(httpserver.url_for(SECRET_PATH), "x")
    from pncp_assets_tests.support.seaweed import free_port

    with pytest.raises(WebhookError, match="could not be reached") as unreachable:
        post_message(f"http://127.0.0.1:{free_port()}{SECRET_PATH}", "x", timeout_s=2)
    for error in (answered.value, unreachable.value):
        # Nor in a traceback: no chained exception of the HTTP library (whose message quotes the URL).
        assert "FakeWebhookToken" not in str(error) and error.__cause__ is None
        assert error.__context__ is None or error.__suppress_context__
