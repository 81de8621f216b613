"""Holes found across feeds and days, with the clocks moving: a contratação the versions feed shows whose
publication day was closed without it is reported with its evidence and filled by the next re-sweep; an ID
PNCP moved to another publication day is reported, never dropped; records PNCP withdrew are noted, not failed."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest

from pncp_assets import bronze, ledger
from pncp_assets.brasilia import TZ
from pncp_assets.consistency import check_range, format_report
from pncp_assets.defs.assets import AssetNames, first_seen, versions
from pncp_assets.layers import FIRST_SEEN, VERSIONS
from pncp_assets.pncp.simulator import RunningSimulator, SimulatorConfig
from pncp_assets.state import StateManager
from pncp_assets_tests.support.pipeline import Pipeline, metadata_by_hour, partition, storage_resource
from pncp_assets_tests.support.schedules import run_request, scheduled_runs, set_clocks

DAY = dt.date(2025, 10, 22)
LAST_HOUR = partition(DAY, 23)
MODALIDADES = (6, 8, 9)


def at(day: dt.date, hour: int, minute: int = 5) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=TZ)


@pytest.fixture
def instance():
    with dg.instance_for_test() as persisted:
        yield persisted


def of_day(records: list[dict]) -> set[str]:
    return {r["numeroControlePNCP"] for r in records if r["modalidadeId"] in MODALIDADES}


# 3 % of the records are inserted 30 to 44 hours after their publication, their first version then.
BACKDATED = {"seed": 71, "volume": 300, "late_fraction": 0.03, "late_hours": 30.0, "late_hours_max": 44.0,
             "late_updated_at": "insertion"}


def test_a_record_the_versions_feed_shows_but_its_closed_day_lacks_is_a_hole_filled_by_the_next_resweep(
        local_store, instance, monkeypatch):
    with RunningSimulator(SimulatorConfig(**BACKDATED)) as sim:
        p = Pipeline(sim, local_store, storage_resource(local_store), graphs=(first_seen, versions),
                     instance=instance)
        set_clocks(p, monkeypatch, at(DAY + dt.timedelta(days=1), 6))  # D closed without its backdated records
        assert p.run_range(partition(DAY, 0), LAST_HOUR).success
        closed = of_day(sim.sim.visible_records(DAY))
        # Two days later the versions layer files their first versions (on D+1 and D+2, when they were inserted).
        set_clocks(p, monkeypatch, at(DAY + dt.timedelta(days=3), 0))
        later = p.run_range(partition(DAY + dt.timedelta(days=1), 0), partition(DAY + dt.timedelta(days=2), 23))
        assert later.success
        backdated = of_day(sim.sim.all_records(DAY)) - closed
        assert len(backdated) >= 3, "the test means something only with records inserted after the day close"

        # Reported with their evidence: in D's state, the checks command, the versions layer's metadata.
        state = StateManager(local_store).load_fresh(FIRST_SEEN, DAY).state
        found = ledger.open_holes(state)
        assert set(found) == backdated
        for x, evidence in found.items():
            version = evidence["version"]
            assert version.startswith(f"{x}@") and evidence["published"][:10] == DAY.isoformat()
            held = bronze.parquet_ids(local_store.get(evidence["seen_in"]).data, VERSIONS.key.field)
            assert evidence["seen_in"].startswith(f"{VERSIONS.source}/") and version in held
        holes_found = sum(m.get("holes_found", 0) for m in
                          metadata_by_hour(later, AssetNames.of(VERSIONS).deltas).values())
        assert holes_found == len(backdated)
        report = check_range(local_store, DAY, DAY, FIRST_SEEN, now=at(DAY + dt.timedelta(days=3), 0))
        [line] = [x for x in format_report(report) if x.startswith("FAILED")]
        assert f"{len(backdated)} records held by the versions layer are missing (holes)" in line
        assert all(x in line for x in sorted(backdated)[:10])

        # The re-sweep schedule's next tick sweeps D again, once, in full; the holes are filled into D.
        tick = at(DAY + dt.timedelta(days=3), 6, 35)
        requests = [(name, r) for _, name, r in scheduled_runs(p, monkeypatch, tick, tick,
                                                                 names=("pncp_resweep_schedule",))]
        holes = [r for _, r in requests if r.tags.get("pncp/resweep_reason") == "holes"]
        assert [r.partition_key for r in holes] == [LAST_HOUR]
        resweep = run_request(p, holes[0])
        assert resweep.success
        again = [r for _, _, r in scheduled_runs(p, monkeypatch, tick + dt.timedelta(days=1),
                                                 tick + dt.timedelta(days=1), names=("pncp_resweep_schedule",))]
        assert not [r for r in again if r.tags.get("pncp/resweep_reason") == "holes"]  # filled: not again
        set_clocks(p, monkeypatch, tick + dt.timedelta(days=1))
        quiet = p.run(LAST_HOUR)  # a re-sweep with nothing added to the day since

    # The versions layer sweeps a day again in full only when the first-seen count rose since its last close.
    assert metadata_by_hour(resweep, AssetNames.of(VERSIONS).raw)[LAST_HOUR]["counted_only"] == 0
    counted = metadata_by_hour(quiet, AssetNames.of(VERSIONS).raw)[LAST_HOUR]
    assert counted["counted_only"] == len(MODALIDADES) and counted["requests"] == len(MODALIDADES)

    swept = metadata_by_hour(resweep, AssetNames.of(FIRST_SEEN).raw)[LAST_HOUR]
    assert swept["counted_only"] == 0  # an open hole: PNCP's count is not trusted, every page is fetched
    deltas = p.assert_invariants(DAY, closed | backdated)  # every record of D once, in D
    assert {pk for pk, ids in deltas.items() if backdated & set(ids)} == {LAST_HOUR}
    assert not ledger.open_holes(StateManager(local_store).load_fresh(FIRST_SEEN, DAY).state)
    [verdict] = [c for c in resweep.get_asset_check_evaluations()
                 if c.check_name == "completeness" and c.asset_key.path[-1] == AssetNames.of(FIRST_SEEN).deltas]
    assert verdict.passed and verdict.metadata["holes"].value == 0
    assert check_range(local_store, DAY, DAY, FIRST_SEEN, now=tick).passed


# 4 % of contratações move to the next day half a day after publication; 4 % are withdrawn a day and a half after.
MOVED = {"seed": 72, "volume": 200, "move_fraction": 0.04, "move_after_days": 0.5, "move_by_days": 1,
         "withdraw_fraction": 0.04, "withdraw_after_days": 1.5}


def test_an_id_moved_to_another_day_is_reported_on_both_and_withdrawn_records_are_noted_not_failed(
        local_store, monkeypatch):
    with RunningSimulator(SimulatorConfig(**MOVED)) as sim:
        p = Pipeline(sim, local_store, storage_resource(local_store))
        set_clocks(p, monkeypatch, at(DAY, 12))
        assert p.run_range(partition(DAY, 0), partition(DAY, 11)).success  # the morning, before any move
        set_clocks(p, monkeypatch, at(DAY + dt.timedelta(days=1), 0, 35))
        assert p.run_range(partition(DAY, 0), LAST_HOUR).success  # closed before any withdrawal
        set_clocks(p, monkeypatch, at(DAY + dt.timedelta(days=3), 6))
        nextday = p.run_range(partition(DAY + dt.timedelta(days=1), 0), partition(DAY + dt.timedelta(days=1), 23))
        resweep = p.run(LAST_HOUR)  # withdrawn (and moved away) since the closing sweep
    on_day = {x for ids in p.delta_ids(DAY).values() for x in ids}
    moved_here = {x for ids in p.delta_ids(DAY + dt.timedelta(days=1)).values() for x in ids} & on_day
    assert moved_here, "the test means something only if a record filed on D moved to D+1"
    # Reported in Dagster, where it was filed a second time, and by the checks command; never dropped.
    also = sum(m.get("also_on_other_days", 0) for m in
               metadata_by_hour(nextday, AssetNames.of(FIRST_SEEN).deltas).values())
    assert also == len(moved_here)
    report = check_range(local_store, DAY, DAY + dt.timedelta(days=1), FIRST_SEEN,
                         now=at(DAY + dt.timedelta(days=3), 6))
    assert set(report.across_days) == moved_here
    assert all(days == [DAY.isoformat(), (DAY + dt.timedelta(days=1)).isoformat()]
               for days in report.across_days.values())
    # The count fell: noted in the verdict, which passes.
    [verdict] = [c for c in resweep.get_asset_check_evaluations() if c.check_name == "completeness"]
    assert verdict.passed and verdict.metadata["withdrawn"].value > 0
    assert "withdrawn or moved" in verdict.description
    assert any(line.startswith("NOTE") and "withdrawn or moved" in line
               for line in format_report(check_range(local_store, DAY, DAY, FIRST_SEEN,
                                                     now=at(DAY + dt.timedelta(days=3), 6))))
