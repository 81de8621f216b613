"""The commit protocol without Dagster: crashes between its steps, racing writers, publishing rules."""

from __future__ import annotations

import datetime as dt

import pytest

from pncp_assets import bronze, layout
from pncp_assets.brasilia import TZ
from pncp_assets.commit import DeltaCommitter, PublishConflict, publish_delta
from pncp_assets.consistency import ConsistencyCheck
from pncp_assets.layers import VERSIONS
from pncp_assets.storage import ObjectStore
from pncp_assets_tests.support.concurrency import run_together
from pncp_assets_tests.support.records import encode_parquet, record_like

DAY = dt.date(2025, 10, 22)


def records_at(sample, hour: int, start: int, count: int):
    out = []
    for n in range(start, start + count):
        r = record_like(sample, n, dataPublicacaoPncp=f"2025-10-22T{hour:02d}:{n % 60:02d}:00")
        out.append((r, bronze.Provenance(6, 1)))
    return out


def all_delta_ids(store: ObjectStore) -> list[str]:
    return [x for k in layout.day_delta_keys(store, "pncp", DAY) for x in bronze.parquet_ids(store.get(k).data)]


def test_crash_after_the_claim_before_publishing_is_rolled_forward(store: ObjectStore, sample_records):
    committer = DeltaCommitter(store)
    swept = records_at(sample_records[0], 8, 1, 10)
    result = committer.commit("2025-10-22-08:00", swept, "run-a")
    assert result.status == "written"
    # The process dies here: the claim is in the state, the delta never reached its key.
    assert not store.exists(result.key)
    assert ConsistencyCheck(store).check("2025-10-22-08:00").passed  # a claim in flight is not a disagreement

    swept += records_at(sample_records[0], 9, 11, 5)
    later = DeltaCommitter(store).commit("2025-10-22-09:00", swept, "run-b")
    DeltaCommitter(store).publish(later.output)
    assert store.exists(result.key)  # recovery published 08:00 from its staged file
    ids = all_delta_ids(store)
    assert sorted(ids) == sorted(r["numeroControlePNCP"] for r, _ in swept)
    assert len(ids) == len(set(ids))
    assert ConsistencyCheck(store).check("2025-10-22-09:00").passed


def test_a_claim_left_open_by_a_run_that_died_after_publishing_is_retired_by_the_next_run(store: ObjectStore,
                                                                                        sample_records):
    swept = records_at(sample_records[0], 8, 1, 5)
    first = DeltaCommitter(store)
    result = first.commit("2025-10-22-08:00", swept, "run-a")
    first.publish(result.output)  # ... and the process dies before finalize
    staged = first.state.load_fresh("pncp", DAY).state.partitions["2025-10-22-08:00"].staged
    swept += records_at(sample_records[0], 9, 6, 3)
    later = DeltaCommitter(store)
    later.publish(later.commit("2025-10-22-09:00", swept, "run-b").output)
    later.finalize("2025-10-22-09:00")
    parts = later.state.load_fresh("pncp", DAY).state.partitions
    assert parts["2025-10-22-08:00"].staged is None and parts["2025-10-22-09:00"].staged is None
    assert not store.exists(staged) and store.list(layout.staging_prefix("pncp", DAY)) == []
    assert sorted(all_delta_ids(store)) == sorted(r["numeroControlePNCP"] for r, _ in swept)


def test_crash_after_staging_before_the_claim_loses_nothing(store: ObjectStore, sample_records):
    swept = records_at(sample_records[0], 8, 1, 6)
    staged = layout.staging_key("pncp", "2025-10-22-08:00", "dead-run")
    store.put(staged, encode_parquet([r for r, _ in swept]))  # staged, then the process died
    committer = DeltaCommitter(store)
    result = committer.commit("2025-10-22-08:00", swept, "run-b")
    committer.publish(result.output)
    committer.finalize("2025-10-22-08:00")
    assert sorted(all_delta_ids(store)) == sorted(r["numeroControlePNCP"] for r, _ in swept)
    assert store.exists(staged)  # a young unclaimed staged file may be a live run's: kept ...
    old = DeltaCommitter(store, staging_grace=dt.timedelta(0))
    assert old.remove_orphans(DAY) == 1  # ... and removed once past the grace period
    assert not store.exists(staged)


def test_claim_whose_files_are_both_gone_is_dropped_and_ingested_again(store: ObjectStore, sample_records):
    committer = DeltaCommitter(store)
    swept = records_at(sample_records[0], 8, 1, 4)
    result = committer.commit("2025-10-22-08:00", swept, "run-a")
    store.delete(committer.state.load_fresh("pncp", DAY).state.partitions["2025-10-22-08:00"].staged)
    again = DeltaCommitter(store).commit("2025-10-22-10:00", swept, "run-c")
    DeltaCommitter(store).publish(again.output)
    assert sorted(again.new_ids) == sorted(result.new_ids)  # nothing lost: filed again, in 10:00
    assert ConsistencyCheck(store).check("2025-10-22-10:00").passed


def test_publish_never_shrinks_a_partition(store: ObjectStore, sample_records):
    key = layout.delta_key("pncp", "2025-10-22-08:00")
    small = [r for r, _ in records_at(sample_records[0], 8, 1, 2)]
    big = small + [r for r, _ in records_at(sample_records[0], 8, 3, 2)]
    ids = lambda rs: frozenset(r["numeroControlePNCP"] for r in rs)  # noqa: E731
    assert publish_delta(store, key, encode_parquet(big), ids(big)) == "written"
    assert publish_delta(store, key, encode_parquet(small), ids(small)) == "kept"  # a late, stale run
    assert sorted(bronze.parquet_ids(store.get(key).data)) == sorted(ids(big))
    other = [r for r, _ in records_at(sample_records[0], 8, 50, 1)]
    with pytest.raises(PublishConflict):
        publish_delta(store, key, encode_parquet(other), ids(other))


def test_racing_runs_of_different_hours_file_each_record_once(store: ObjectStore, sample_records):
    swept = [x for h in range(6) for x in records_at(sample_records[0], h, 100 * h + 1, 8)]
    def run(hour: int) -> None:
        committer = DeltaCommitter(store)
        result = committer.commit(f"2025-10-22-{hour:02d}:00", swept, f"run-{hour}")
        if result.output is not None:
            committer.publish(result.output)
        committer.finalize(f"2025-10-22-{hour:02d}:00")

    errors = run_together(6, run)
    assert errors == []
    ids = all_delta_ids(store)
    assert sorted(ids) == sorted(r["numeroControlePNCP"] for r, _ in swept)
    state = DeltaCommitter(store).state.load_fresh("pncp", DAY).state
    assert state.processed_ids == sorted(ids)
    assert not store.list(layout.staging_prefix("pncp", DAY))  # every staged file retired
    assert ConsistencyCheck(store).check("2025-10-22-05:00").passed


def test_rejected_records_are_kept_not_dropped(store: ObjectStore, sample_records):
    good = records_at(sample_records[0], 8, 1, 2)
    bad = [(dict(good[0][0], numeroControlePNCP="oops"), bronze.Provenance(6, 2))]
    result = DeltaCommitter(store).commit("2025-10-22-08:00", good + bad, "run-a")
    assert result.stats["rejected"] == 1
    kept = store.get(result.rejected_key).data.decode()
    assert '"oops"' in kept and "does not match" in kept


def test_a_claim_naming_a_staged_key_of_the_old_layout_still_recovers(store: ObjectStore, sample_records):
    """Before staged deltas moved out of `pncp/`, a run may have claimed `pncp/_staging/...` and died."""
    swept = records_at(sample_records[0], 8, 1, 7)
    committer = DeltaCommitter(store)
    result = committer.commit("2025-10-22-08:00", swept, "old-run")
    claim = committer.state.load_fresh("pncp", DAY).state.partitions["2025-10-22-08:00"]
    legacy = claim.staged.replace("_staging/pncp/", "pncp/_staging/")
    store.put(legacy, store.get(claim.staged).data)
    store.delete(claim.staged)

    def move(state):
        state.partitions["2025-10-22-08:00"].staged = legacy
        return None, True

    committer.state.transact("pncp", DAY, move)

    DeltaCommitter(store).finalize("2025-10-22-08:00")  # the next run: rolls it forward, then retires it
    assert sorted(all_delta_ids(store)) == sorted(r["numeroControlePNCP"] for r, _ in swept)
    assert not store.exists(legacy) and store.exists(result.key)
    assert ConsistencyCheck(store).check("2025-10-22-08:00").passed


def test_orphans_of_both_layouts_are_removed_after_the_grace_period(store: ObjectStore, sample_records):
    data = encode_parquet([r for r, _ in records_at(sample_records[0], 8, 1, 2)])
    old = dt.datetime(2025, 10, 22, 9, tzinfo=dt.UTC)
    new_layout = layout.staging_key("pncp", "2025-10-22-08:00", "dead", at=old)
    old_layout = new_layout.replace("_staging/pncp/", "pncp/_staging/")
    young = layout.staging_key("pncp", "2025-10-22-08:00", "live", at=old + dt.timedelta(hours=23))
    for key in (new_layout, old_layout, young):
        store.put(key, data)
    removed = DeltaCommitter(store).remove_orphans(DAY, now=old + dt.timedelta(hours=25))
    assert removed == 2 and store.list("_staging/") == [young] and not store.list("pncp/_staging/")


def test_a_record_whose_id_is_an_object_is_rejected_not_a_crash(store: ObjectStore, sample_records):
    bad = record_like(sample_records[0], 1, dataPublicacaoPncp="2025-10-22T08:10:00")
    bad["numeroControlePNCP"] = {"not": "an id"}
    good = records_at(sample_records[0], 8, 2, 1)
    result = DeltaCommitter(store).commit("2025-10-22-08:00", [(bad, bronze.Provenance(6, 1)), *good], "run")
    assert (result.status, result.stats["rejected"], result.new_ids) == (
        "written", 1, [good[0][0]["numeroControlePNCP"]])


# --- the versions layer: the same protocol keyed by numeroControlePNCP@dataAtualizacaoGlobal ---------


def version_of(sample, n: int, changed: str, **changes):
    return (record_like(sample, n, dataAtualizacaoGlobal=changed, **changes), bronze.Provenance(6, 1))


def test_versions_are_filed_once_each_keyed_by_id_and_change_time(local_store: ObjectStore, sample_records):
    committer = DeltaCommitter(local_store, VERSIONS)
    first = version_of(sample_records[0], 1, "2025-10-22T08:10:00")
    homologated = version_of(sample_records[0], 1, "2025-10-22T08:40:00", valorTotalHomologado=1234.5)
    broken = version_of(sample_records[0], 2, "yesterday")
    result = committer.commit("2025-10-22-08:00", [first, homologated, first, broken], "run-a")
    committer.publish(result.output)
    rid = first[0]["numeroControlePNCP"]
    keys = f"{rid}@2025-10-22T08:10:00", f"{rid}@2025-10-22T08:40:00"
    assert sorted(result.new_ids) == sorted(keys)
    table = bronze.read_parquet(local_store.get(layout.delta_key("pncp_versions", "2025-10-22-08:00")).data)
    assert table.schema.equals(VERSIONS.schema, check_metadata=False)
    assert table.schema.metadata[b"pncp_assets.schema"] == b"contratacao_atualizacao.v1"
    assert sorted(table.column("_version_key").to_pylist()) == sorted(keys)
    assert result.stats["rejected"] == 1  # an unreadable change time cannot key a version: kept aside
    rejected = local_store.get(layout.rejected_key("pncp_versions", "2025-10-22-08:00")).data.decode()
    assert "dataAtualizacaoGlobal 'yesterday' is not a timestamp" in rejected
    again = DeltaCommitter(local_store, VERSIONS).commit("2025-10-22-09:00", [first, homologated], "run-b")
    assert again.status == "no_data" and again.reason == "all_duplicates"  # seen: never filed twice
    assert ConsistencyCheck(local_store, VERSIONS).check("2025-10-22-08:00").passed
    rebuilt = committer.state.rebuild_from_bronze("pncp_versions", DAY)  # the state from Bronze, in version keys
    assert rebuilt.processed_ids == sorted(keys)


@pytest.mark.parametrize("swept_after_end_min, takes_the_tail", [(5, True), (55, True), (65, False), (600, False)])
def test_the_hour_just_ended_takes_the_versions_its_sweep_shows(local_store: ObjectStore, sample_records,
                                                                swept_after_end_min, takes_the_tail):
    """A version lives until the next change: the run of H (at H+1:05) files what its sweep shows of the
    minutes after H too; a backfill's sweep (long after H) files each version in its own hour."""
    in_hour = version_of(sample_records[0], 1, "2025-10-22T08:30:00")
    after = version_of(sample_records[0], 2, "2025-10-22T09:03:00")
    end = dt.datetime(2025, 10, 22, 9, tzinfo=TZ)
    swept_at = end + dt.timedelta(minutes=swept_after_end_min)
    result = DeltaCommitter(local_store, VERSIONS).commit("2025-10-22-08:00", [in_hour, after], "run",
                                                                  swept_at=swept_at)
    filed = {x.split("@")[1] for x in result.new_ids}
    assert filed == ({"2025-10-22T08:30:00", "2025-10-22T09:03:00"} if takes_the_tail else {"2025-10-22T08:30:00"})
    assert result.late == 0 and result.hour_records == 1
