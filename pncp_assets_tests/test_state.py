"""The original document's StateManager against both backends: its executions, concurrency, corruption, midnight;
and the pipeline's own filter rules beside it."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from pncp_assets import layout
from pncp_assets import state as core
from pncp_assets.document_api import StateManager
from pncp_assets.storage import ObjectStore
from pncp_assets_tests.support.concurrency import run_together
from pncp_assets_tests.support.records import encode_parquet, make_id, record_like

DAY = "20251022"


@pytest.fixture
def manager(store: ObjectStore) -> StateManager:
    return StateManager(store)


def test_no_state_file_gives_a_fresh_state(manager: StateManager):
    state = manager.load_state("pncp", DAY)
    assert state["date"] == "2025-10-22"
    assert state["processed_ids"] == []
    assert state["total_processed"] == 0
    assert state["executions"] == []
    assert state["last_execution"] is None
    assert not manager.storage.exists(layout.state_key("pncp", DAY))  # loading writes nothing


def test_the_seeds_three_executions(manager: StateManager, sample_records):
    first = sample_records[:3]
    new, stats = manager.filter_new_records("pncp", DAY, first)
    assert len(new) == 3 and stats["new_records"] == 3 and stats["filter_rate"] == 0.0
    manager.update_state("pncp", DAY, [r["numeroControlePNCP"] for r in new], stats)

    second = sample_records[:5]
    new, stats = manager.filter_new_records("pncp", DAY, second)
    assert [r["numeroControlePNCP"] for r in new] == [r["numeroControlePNCP"] for r in sample_records[3:5]]
    assert stats["input_records"] == 5
    assert stats["new_records"] == 2
    assert stats["already_processed"] == 3
    assert stats["duplicates_filtered"] == 3
    assert stats["filter_rate"] == 60.0
    manager.update_state("pncp", DAY, [r["numeroControlePNCP"] for r in new], stats)

    new, stats = manager.filter_new_records("pncp", DAY, second)
    assert new == [] and stats["new_records"] == 0 and stats["duplicates_filtered"] == 5
    assert stats["filter_rate"] == 100.0
    manager.update_state("pncp", DAY, [], stats)

    summary = StateManager(manager.storage).get_state_summary("pncp", DAY)  # a fresh manager reads the file
    assert summary["total_processed"] == 5
    assert summary["total_executions"] == 3
    assert summary["last_execution"] is not None
    state = StateManager(manager.storage).load_state("pncp", DAY)
    assert [e["new_records"] for e in state["executions"]] == [3, 2, 0]
    assert [e["duplicates_filtered"] for e in state["executions"]] == [0, 3, 5]
    assert [e["filter_rate"] for e in state["executions"]] == [0.0, 60.0, 100.0]


def test_state_file_has_the_design_format(manager: StateManager, sample_records):
    ids = ["99999999000191-1-000002/2025", "11111111000191-1-000001/2025"]
    manager.update_state("pncp", DAY, ids, {"duplicates_filtered": 0, "input_records": 2})
    key = "pncp/_state/year=2025/month=10/day=22/state_20251022.zst"
    state = core.DayState.decode(manager.storage.get(key).data, dt.date(2025, 10, 22)).to_json()
    assert set(state) >= {"date", "processed_ids", "last_execution", "total_processed", "executions", "created_at"}
    assert state["date"] == "2025-10-22"
    assert state["processed_ids"] == sorted(ids)
    assert state["total_processed"] == 2
    assert state["last_execution"].endswith("Z")
    entry = state["executions"][0]
    assert {"timestamp", "new_records", "duplicates_filtered", "filter_rate"} <= set(entry)


def test_duplicates_inside_one_input_keep_the_first_copy(manager: StateManager, sample_records):
    a = record_like(sample_records[0], 1, objetoCompra="first copy")
    b = record_like(sample_records[0], 1, objetoCompra="second copy")
    c = record_like(sample_records[0], 2)
    new, stats = manager.filter_new_records("pncp", DAY, [a, b, c])
    assert [r["objetoCompra"] for r in new] == ["first copy", sample_records[0]["objetoCompra"]]
    assert stats["duplicates_in_input"] == 1
    assert stats["already_processed"] == 0
    assert stats["filter_rate"] == pytest.approx(33.33)


def test_a_versions_state_filters_versions_not_ids(local_store: ObjectStore, sample_records):
    manager = StateManager(local_store)
    first = record_like(sample_records[0], 1, dataAtualizacaoGlobal="2025-10-22T08:10:00")
    changed = record_like(sample_records[0], 1, dataAtualizacaoGlobal="2025-10-22T09:30:00")
    manager.update_state("pncp_versions", DAY, [f"{first['numeroControlePNCP']}@2025-10-22T08:10:00"])
    new, stats = manager.filter_new_records("pncp_versions", DAY, [first, changed])
    assert new == [changed] and stats["already_processed"] == 1  # same ID, a new version


def test_the_pipelines_filter_rejects_missing_or_malformed_ids_not_drops_them(store: ObjectStore, sample_records):
    manager = core.StateManager(store)  # the pipeline's rules: the contratação mask
    good = record_like(sample_records[0], 7)
    missing = dict(sample_records[1])
    del missing["numeroControlePNCP"]
    empty = record_like(sample_records[0], 8, numeroControlePNCP="")
    malformed = record_like(sample_records[0], 9, numeroControlePNCP="not-an-id")
    wrong_type = record_like(sample_records[0], 10, numeroControlePNCP=12345)
    alnum = record_like(sample_records[0], 11, numeroControlePNCP="12ABC345000190-1-000011/2026")
    new, stats = manager.filter_new_records("pncp", DAY, [good, missing, empty, malformed, wrong_type, alnum])
    assert new == [good, alnum]  # the alphanumeric CNPJ of 2026 is valid
    assert stats["rejected"] == 4
    assert [r["record"] for r in stats["rejected_records"]] == [missing, empty, malformed, wrong_type]
    assert all(r["reason"] for r in stats["rejected_records"])
    assert stats["input_records"] == 6
    assert stats["new_records"] + stats["duplicates_filtered"] + stats["rejected"] == stats["input_records"]


def test_8_threads_updating_one_day_lose_nothing(store: ObjectStore):
    managers = [StateManager(store) for _ in range(8)]  # one per writer, as separate runs would have
    for mgr in managers:
        mgr.load_state("pncp", DAY)

    def writer(t: int) -> None:
        managers[t].update_state("pncp", DAY, [make_id(t * 1000 + i) for i in range(25)], {"writer": t})

    errors = run_together(8, writer)
    assert errors == []
    state = StateManager(store).load_state("pncp", DAY)
    assert state["processed_ids"] == sorted(make_id(t * 1000 + i) for t in range(8) for i in range(25))
    assert state["total_processed"] == 200
    assert len(state["executions"]) == 8
    assert sorted(e["writer"] for e in state["executions"]) == list(range(8))


def _write_delta(store: ObjectStore, hour: str, records: list[dict]) -> str:
    key = layout.delta_key("pncp", hour)
    store.put(key, encode_parquet(records, partition_key=hour))
    return key


def _compact(change=None) -> bytes:
    """A compact state of DAY (two claimed IDs and one unclaimed), its encoded body changed by `change`."""
    import zstandard

    state = core.DayState.new(dt.date(2025, 10, 22), "2025-10-22T08:00:00Z")
    state.add_ids(["a", "b", "c"])
    state.partitions["2025-10-22-08:00"] = core.Claim(["a", "c"])
    body = state.encode_body()
    return zstandard.ZstdCompressor(write_checksum=True).compress(change(body) if change else body)


def _flipped(data: bytes) -> bytes:
    damaged = bytearray(data)
    damaged[len(damaged) // 2] ^= 0x01
    return bytes(damaged)


COMPACT_DAMAGE = {
    "compact-byte-flipped": _flipped(_compact()),  # zstd's content checksum fails
    "compact-truncated": _compact()[:-6],
    "compact-claims-short": _compact(lambda body: body[:-1]),  # one claim byte missing
    "compact-claim-miscounted": _compact(lambda body: body.replace(b'"count":2', b'"count":3')),
    "compact-wrong-format": _compact(lambda body: body.replace(b"pncp_state/2", b"pncp_state/9")),
    "compact-claim-number-unknown": _compact(lambda body: body.replace(b'"claim":1', b'"claim":7')),
    "compact-declares-4-GiB": b"\x28\xb5\x2f\xfd\xa4\x00\x00\x00\x00\x01\x00\x00\x00",
    "archived-in-nowhere": b'{"archived_in": "pncp/_archive/year=2025/month=10/states_202510.zst",'
                           b' "date": "2025-10-22", "sha256": "00"}',
    "archived-elsewhere": b'{"archived_in": "pncp/_archive/year=2024/month=01/states_202401.zst",'
                          b' "date": "2025-10-22", "sha256": "00"}',
}


@pytest.mark.parametrize(
    "content",
    [
        *COMPACT_DAMAGE.values(),
        b"{not json",
        b'{"date": "2025-10-22", "processed_ids": ["a", "b"',  # truncated
        b'{"date": "2025-10-22", "processed_ids": "abc", "total_processed": 3, "executions": []}',
        b'{"date": "2025-10-22", "processed_ids": [1, 2], "total_processed": 2, "executions": []}',
        b'{"date": "2025-10-22", "processed_ids": [], "total_processed": "0", "executions": []}',
        b'{"date": "2025-10-22", "processed_ids": [], "total_processed": 5, "executions": []}',
        b'{"date": "2025-10-21", "processed_ids": [], "total_processed": 0, "executions": []}',
        b"[1, 2, 3]",
        b"\xff\xfe\x00garbage",
        b'{"date": 20251022, "processed_ids": [], "total_processed": 0, "executions": []}',
        b'{"date": "2025-10-22", "processed_ids": [], "total_processed": 0, "executions": {}}',
        b'{"date": "2025-10-22", "processed_ids": [], "total_processed": 0, "executions": [1]}',
        b'{"date": "2025-10-22", "processed_ids": [], "total_processed": 0, "executions": [], "last_execution": 5}',
        b'{"date": "2025-10-22", "processed_ids": [], "total_processed": 0, "executions": [], "created_at": []}',
        b'{"date": "2025-10-22", "processed_ids": ["a", "a"], "total_processed": 2, "executions": []}',
        b'{"date": "2025-10-22", "processed_ids": [], "total_processed": 0, "executions": [], "partitions": []}',
        b'{"date": "2025-10-22", "processed_ids": [], "total_processed": 0, "executions": [],'
        b' "partitions": {"2025-10-22-08:00": {"ids": ["x"], "staged": null}}}',
        b"[" * 100_000 + b"]" * 100_000,
        b"",
    ],
    ids=[*COMPACT_DAMAGE, "bad-json", "truncated", "ids-not-list", "ids-not-strings", "total-wrong-type",
         "total-disagrees",
         "other-date", "not-object", "not-utf8", "date-wrong-type", "executions-not-list",
         "executions-not-objects", "last-execution-not-text", "created-at-not-text", "ids-repeated",
         "partitions-not-object", "partition-claims-unknown-id", "deeply-nested", "empty-file"],
)
def test_corrupted_state_is_rebuilt_from_bronze_not_started_empty(
    store: ObjectStore, sample_records, content: bytes, caplog: pytest.LogCaptureFixture
):
    _write_delta(store, "2025-10-22-08:00", sample_records[:2])
    _write_delta(store, "2025-10-22-09:00", sample_records[2:4])
    store.put(layout.state_key("pncp", DAY), content)
    manager = StateManager(store)
    with caplog.at_level(logging.WARNING):
        new, stats = manager.filter_new_records("pncp", DAY, sample_records)
    assert any("corrupted" in r.message and "rebuilding" in r.message for r in caplog.records)
    assert [r["numeroControlePNCP"] for r in new] == [r["numeroControlePNCP"] for r in sample_records[4:]]
    assert stats["already_processed"] == 4
    # The next update replaces the corrupted file with a valid one holding Bronze's IDs and the new ones.
    manager.update_state("pncp", DAY, [r["numeroControlePNCP"] for r in new], stats)
    state = StateManager(store).load_state("pncp", DAY)
    assert state["processed_ids"] == sorted(r["numeroControlePNCP"] for r in sample_records)
    assert "recovered_from_bronze" in state


def test_midnight_each_brasilia_day_has_its_own_state(manager: StateManager, sample_records):
    manager.update_state("pncp", "2025-10-22", [make_id(1)])
    before = manager.storage.get(layout.state_key("pncp", "2025-10-22"))
    manager.update_state("pncp", "2025-10-23", [make_id(2)])
    after = manager.storage.get(layout.state_key("pncp", "2025-10-22"))
    assert after == before  # the previous day's file is untouched
    assert manager.load_state("pncp", "20251023")["processed_ids"] == [make_id(2)]
    assert manager.storage.list("pncp/_state/") == [
        "pncp/_state/year=2025/month=10/day=22/state_20251022.zst",
        "pncp/_state/year=2025/month=10/day=23/state_20251023.zst",
    ]


def test_a_utc_datetime_after_midnight_utc_is_still_the_brasilia_day(manager: StateManager):
    import datetime as dt

    late_evening_brasilia = dt.datetime(2025, 10, 23, 1, 30, tzinfo=dt.UTC)  # 22:30 on the 22nd
    manager.update_state("pncp", late_evening_brasilia, [make_id(5)])
    assert manager.load_state("pncp", "20251022")["processed_ids"] == [make_id(5)]


def test_update_with_already_known_ids_adds_nothing(manager: StateManager):
    manager.update_state("pncp", DAY, [make_id(1), make_id(2)])
    state = manager.update_state("pncp", DAY, [make_id(2), make_id(3), make_id(3)])
    assert state["processed_ids"] == [make_id(1), make_id(2), make_id(3)]
    assert state["executions"][-1]["new_records"] == 1


@pytest.mark.parametrize("source", ["../etc", "pncp/x", "/abs", "pn\x00cp", "PNCP", ""])
def test_path_like_sources_are_refused(manager: StateManager, source: str):
    with pytest.raises(ValueError):
        manager.load_state(source, DAY)


def test_filter_log_line_speaks_the_users_language(manager: StateManager, sample_records, caplog):
    manager.update_state("pncp", DAY, [r["numeroControlePNCP"] for r in sample_records[:3]])
    with caplog.at_level(logging.INFO):
        manager.filter_new_records("pncp", DAY, sample_records[:4])
    assert "State filtering: 4 input -> 1 new (3 duplicates filtered)" in caplog.text


def test_the_compact_state_holds_each_id_once_and_loads_back_whole(store: ObjectStore):
    manager = core.StateManager(store)
    ids = [make_id(n) for n in range(1, 301)]

    def claim_hours(state: core.DayState):
        for hour in range(3):
            held = ids[hour * 100:(hour + 1) * 100]
            state.claim(f"2025-10-22-{hour:02d}:00", held, "", "2025-10-22T10:00:00Z", {"run_id": "r"})
        return None, True

    manager.transact("pncp", DAY, claim_hours)
    stored = store.get(layout.state_key("pncp", DAY)).data
    body = core.DayState.decode(stored, dt.date(2025, 10, 22)).encode_body()
    assert stored[:4] == b"\x28\xb5\x2f\xfd" and body.count(ids[150].encode()) == 1  # once, not twice
    fresh = core.StateManager(store).load_state("pncp", DAY)
    assert fresh["partitions"]["2025-10-22-01:00"]["ids"] == ids[100:200] and fresh["processed_ids"] == ids
    assert len(stored) * 4 < len(core.DayState.decode(stored, dt.date(2025, 10, 22)).encode_json())


def test_a_state_in_the_old_plain_json_file_loads_then_moves_to_the_compact_file(store: ObjectStore, caplog):
    """States written before the compact form (the document's JSON at `state_YYYYMMDD.json`) load as they
    are; the first write creates the compact file (only if absent: one mover wins) and removes the old one."""
    old = {"date": "2025-10-22", "processed_ids": [make_id(1), make_id(2)],
           "last_execution": "2025-10-22T12:00:00Z", "total_processed": 2,
           "executions": [{"timestamp": "2025-10-22T12:00:00Z", "new_records": 2,
                           "duplicates_filtered": 0, "filter_rate": 0}],
           "created_at": "2025-10-22T08:00:00Z"}
    store.put_json(layout.legacy_state_key("pncp", DAY), old)
    manager = StateManager(store)
    assert manager.load_state("pncp", DAY) == old
    assert manager.get_state_summary("pncp", DAY)["stored_as"] == "plain JSON (the seed's)"
    new, _ = manager.filter_new_records("pncp", DAY, [{"numeroControlePNCP": make_id(2)},
                                                      {"numeroControlePNCP": make_id(3)}])
    assert [r["numeroControlePNCP"] for r in new] == [make_id(3)]
    manager.update_state("pncp", DAY, [make_id(3)])
    assert not store.exists(layout.legacy_state_key("pncp", DAY)) and store.exists(layout.state_key("pncp", DAY))
    state = StateManager(store).load_state("pncp", DAY)
    assert state["processed_ids"] == [make_id(1), make_id(2), make_id(3)] and len(state["executions"]) == 2
