"""The completeness ledger: what PNCP counted for a day and when, beside what Bronze then held; the verdict the
checks command draws from it."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys

from pncp_assets import ledger
from pncp_assets.brasilia import TZ
from pncp_assets.checks import main
from pncp_assets.consistency import check_range, format_report
from pncp_assets.defs.assets import AssetNames
from pncp_assets.layers import FIRST_SEEN
from pncp_assets.pncp.simulator import RunningSimulator, SimulatorConfig
from pncp_assets.retention import archive_states
from pncp_assets.state import StateManager
from pncp_assets.storage import LocalObjectStore
from pncp_assets_tests.support.pipeline import Pipeline, end_of_hour, metadata_by_hour, partition, storage_resource
from pncp_assets_tests.support.schedules import set_clocks

DAY = dt.date(2025, 10, 22)
LAST_HOUR = partition(DAY, 23)
CLOSED = end_of_hour(DAY + dt.timedelta(days=1), 5)  # 06:05 of the next day (the simulator's naive clock)


def test_a_closed_days_ledger_holds_pncps_count_beside_bronze_and_finds_it_complete(tmp_path, monkeypatch):
    store = LocalObjectStore(tmp_path / "data" / "bronze")
    with RunningSimulator(SimulatorConfig(seed=51, volume=200, bad_ids=4)) as sim:
        p = Pipeline(sim, store, storage_resource(store))
        midday = p.run(partition(DAY, 11), now=end_of_hour(DAY, 11))
        day = p.run_range(partition(DAY, 0), LAST_HOUR, now=CLOSED)
        p.sweep_max_age_minutes = 60
        again = p.run(LAST_HOUR, now=CLOSED)  # served by the same stored sweep: nothing new to record
        listed = {m: len([r for r in sim.sim.visible_records(DAY, m)]) for m in (6, 8, 9)}
    assert midday.success and day.success and again.success

    entries = ledger.entries(StateManager(store), FIRST_SEEN, DAY)
    assert [e["hour"] for e in entries] == [partition(DAY, 11), LAST_HOUR]  # one per sweep and hour
    closing = entries[-1]["modalidades"]
    assert {m: row[0] for m, row in closing.items()} == {str(m): n for m, n in listed.items()}  # PNCP's counts
    for total, seen, held, rejected in closing.values():
        assert seen == total and held + rejected == total  # every listed record held, or kept as rejected
    assert sum(row[3] for row in closing.values()) == 4  # the simulator broke four IDs
    assert ledger.shortfalls(entries, DAY) == []
    assert ledger.shortfalls(entries[:1], DAY) is None  # before its last hour was filed: no verdict

    deltas = AssetNames.of(FIRST_SEEN).deltas
    assert metadata_by_hour(day, deltas)[LAST_HOUR]["api_short"] == 0  # shown in the UI, on the day's last hour
    assert metadata_by_hour(day, deltas)[LAST_HOUR]["api_total"] == sum(listed.values())
    assert "api_short" not in metadata_by_hour(midday, deltas)[partition(DAY, 11)]  # not a verdict at midday
    # The day's verdict in Dagster: the check `completeness`, on the day's 23:00 only.
    verdicts = {c.partition: c for c in day.get_asset_check_evaluations() if c.check_name == "completeness"}
    assert list(verdicts) == [LAST_HOUR] and verdicts[LAST_HOUR].passed
    assert verdicts[LAST_HOUR].metadata["api_short"].value == 0
    assert not [c for c in midday.get_asset_check_evaluations() if c.check_name == "completeness"]

    # One command shows it; it is kept in the day's compact state, and archived with it.
    env = {**os.environ, "STORAGE_TYPE": "local", "PNCP_DATA_DIR": str(tmp_path / "data")}
    shown = subprocess.run([sys.executable, "-m", "pncp_assets.state", "--date", "2025-10-22", "--action", "ledger"],
                           capture_output=True, text=True, env=env, check=True, timeout=60)
    assert json.loads(shown.stdout) == {"ledger": entries, "holes": {}, "verdict": "complete", "notes": []}
    assert archive_states(store, FIRST_SEEN, DAY + dt.timedelta(days=1)).archived == [DAY.isoformat()]
    assert ledger.entries(StateManager(store), FIRST_SEEN, DAY) == entries
    assert check_range(store, DAY, DAY, FIRST_SEEN, now=CLOSED.replace(tzinfo=TZ)).passed


def test_a_day_short_of_pncps_count_fails_the_checks_command_naming_the_modalidade_and_the_shortfall(
        tmp_path, monkeypatch):
    store = LocalObjectStore(tmp_path / "data" / "bronze")
    with RunningSimulator(SimulatorConfig(seed=52, volume=120)) as sim:
        p = Pipeline(sim, store, storage_resource(store))
        assert p.run_range(partition(DAY, 0), LAST_HOUR, now=CLOSED).success
    # PNCP's count at a later closing sweep is three above what Bronze holds of modalidade 8 (records the sweep
    # could not get): written into the ledger as a sweep would record it.
    manager = StateManager(store)

    def count_three_more(state):
        entry = json.loads(json.dumps(state.extra["ledger"][-1]))
        swept = dt.datetime.strptime(entry["at"], "%Y-%m-%dT%H:%M:%SZ")
        entry["at"] = f"{swept + dt.timedelta(days=1):%Y-%m-%dT%H:%M:%SZ}"  # a re-sweep a day later
        entry["modalidades"]["8"][0] += 3
        state.extra["ledger"].append(entry)
        return entry, True

    manager.transact(FIRST_SEEN, DAY, count_three_more)
    report = check_range(store, DAY, DAY, FIRST_SEEN, now=CLOSED.replace(tzinfo=TZ))
    assert not report.passed
    [line] = [x for x in format_report(report) if x.startswith("FAILED")]
    latest = ledger.entries(manager, FIRST_SEEN, DAY)[-1]
    held = latest["modalidades"]["8"][2]
    assert line == (f"FAILED {LAST_HOUR}: incomplete (the completeness ledger): short of PNCP's count: modalidade 8: "
                    f"PNCP counted {held + 3} at {latest['at']}, Bronze holds {held}: 3 short")
    monkeypatch.setenv("STORAGE_TYPE", "local")
    monkeypatch.setenv("PNCP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("BRONZE_BUCKET", raising=False)
    assert main(["--from", "2025-10-22", "--source", "pncp"]) == 1
    # In Dagster: the day's 23:00 run again, served by the stored sweep (nothing newer recorded), judges the day
    # by the latest closing count and fails its completeness check, without failing the run.
    p.sweep_max_age_minutes = 60
    with RunningSimulator(SimulatorConfig(seed=52, volume=120)) as sim:
        p.sim = sim
        rerun = p.run(LAST_HOUR, now=CLOSED)
    [verdict] = [c for c in rerun.get_asset_check_evaluations() if c.check_name == "completeness"]
    assert rerun.success and not verdict.passed and verdict.severity.value == "ERROR"
    assert verdict.description == "Incomplete: " + line.split(": ", 2)[2]
    assert verdict.metadata["api_short"].value == 3


# 2 % of the records are shown 30 to 60 hours after their publication: after the day close.
BACKDATED = {"seed": 54, "volume": 240, "late_fraction": 0.02, "late_hours": 30.0, "late_hours_max": 60.0}


def test_a_resweep_of_a_complete_day_counts_first_and_fetches_only_the_modalidades_whose_count_changed(
        tmp_path, monkeypatch):
    store = LocalObjectStore(tmp_path / "data" / "bronze")
    raw, deltas = AssetNames.of(FIRST_SEEN).raw, AssetNames.of(FIRST_SEEN).deltas
    later, much_later = CLOSED + dt.timedelta(days=3), CLOSED + dt.timedelta(days=4)
    with RunningSimulator(SimulatorConfig(**BACKDATED)) as sim:
        p = Pipeline(sim, store, storage_resource(store))

        def run(moment: dt.datetime, pipeline: Pipeline = p):  # the simulator's clock and the pipeline's
            set_clocks(pipeline, monkeypatch, moment.replace(tzinfo=TZ))
            return pipeline.run(LAST_HOUR)

        set_clocks(p, monkeypatch, CLOSED.replace(tzinfo=TZ))
        assert p.run_range(partition(DAY, 0), LAST_HOUR).success
        at_close = {m: len(sim.sim.visible_records(DAY, m)) for m in (6, 8, 9)}
        resweep = run(later)
        now = {m: len(sim.sim.visible_records(DAY, m)) for m in (6, 8, 9)}
        pages = {m: -(-n // 50) or 1 for m, n in now.items()}  # the client's page size for contratações
        quiet = run(much_later)  # nothing changed since
        full = run(much_later + dt.timedelta(hours=1),
                   Pipeline(sim, store, storage_resource(store), count_first=False))
    changed = {m for m in now if now[m] != at_close[m]}
    assert changed and len(changed) < 3, "the test needs some modalidades changed and some not"
    swept = metadata_by_hour(resweep, raw)[LAST_HOUR]
    # Page 1 of every modalidade; the other pages only of those whose count changed.
    assert swept["counted_only"] == 3 - len(changed)
    assert swept["requests"] == 3 + sum(pages[m] - 1 for m in changed)
    assert metadata_by_hour(resweep, deltas)[LAST_HOUR]["new"] == sum(now[m] - at_close[m] for m in changed)
    assert metadata_by_hour(quiet, raw)[LAST_HOUR]["requests"] == 3  # the day is complete: one page each
    assert metadata_by_hour(full, raw)[LAST_HOUR]["requests"] == sum(pages.values())  # PNCP_COUNT_FIRST=false
    # The ledger keeps the day's figures for the modalidades only counted, and names them.
    entries = ledger.entries(StateManager(store), FIRST_SEEN, DAY)
    counted = [e for e in entries if e.get("counted")]
    assert counted[0]["counted"] == sorted(str(m) for m in now if m not in changed)
    assert counted[1]["counted"] == ["6", "8", "9"]
    for total, _listed, held, rejected in counted[1]["modalidades"].values():
        assert held + rejected == total
    assert [c.passed for c in quiet.get_asset_check_evaluations() if c.check_name == "completeness"] == [True]
    assert p.assert_invariants(DAY, {r["numeroControlePNCP"] for r in sim.sim.all_records(DAY)
                                     if r["modalidadeId"] in (6, 8, 9)})


def test_a_versions_layer_days_later_is_only_counted_unless_the_first_seen_count_rose():
    from pncp_assets.pncp.client import ANY_COUNT
    from pncp_assets.state import DayState

    def state(*entries):
        s = DayState.new(DAY, "")
        s.extra["ledger"] = [{"at": at, "hour": LAST_HOUR, "modalidades": rows} for at, rows in entries]
        return s

    versions = state(("2025-10-23T03:05:00Z", {"6": [40, 40, 40, 0], "8": [90, 90, 88, 2]}))
    first_seen = state(("2025-10-23T03:04:00Z", {"6": [30, 30, 30, 0], "8": [70, 70, 70, 0]}),
                       ("2025-10-25T09:35:00Z", {"6": [31, 31, 31, 0], "8": [70, 70, 70, 0]}))
    days_later = dt.datetime(2025, 10, 25, 9, 35, tzinfo=dt.UTC)
    asked = []

    def now_counts(counts):
        return lambda: asked.append(1) or counts

    judge = ledger.settled_versions
    # Nothing added to the day since the versions' last close: count only, whatever the versions' count now.
    assert judge(versions, first_seen, DAY, now_counts({6: 30, 8: 69}), days_later) == {6: ANY_COUNT, 8: ANY_COUNT}
    # A record added to modalidade 6 since (the first-seen count then is the one before the versions' close).
    assert judge(versions, first_seen, DAY, now_counts({6: 31, 8: 70}), days_later) == {}
    # Hours after the day (the day close): the layer's own count decides, without asking the first-seen count.
    asked.clear()
    hours_later = dt.datetime(2025, 10, 23, 9, 5, tzinfo=dt.UTC)
    assert judge(versions, first_seen, DAY, now_counts({}), hours_later) == {6: 40, 8: 90}
    assert asked == []
    # No first-seen closing sweep before the versions' last close, or no close at all: swept in full.
    assert judge(versions, state(("2025-10-23T03:06:00Z", {"6": [30, 30, 30, 0]})), DAY, now_counts({6: 30}),
                 days_later) == {}
    assert judge(state(), first_seen, DAY, now_counts({6: 30}), days_later) == {}
