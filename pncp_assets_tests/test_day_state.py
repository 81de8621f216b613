"""The typed day state and its one `transact`, without Dagster (pure logic, plus a local store)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from pncp_assets import layout
from pncp_assets.state import Claim, CorruptState, DayState, StateManager
from pncp_assets.storage import LocalObjectStore, VersionConflict

DAY = dt.date(2025, 10, 22)
H8, H9 = "2025-10-22-08:00", "2025-10-22-09:00"


def ids(*numbers: int) -> list[str]:
    return [f"00000000000191-1-{n:06d}/2025" for n in numbers]


def test_the_json_keeps_the_seeds_fields_in_order_and_every_unknown_field():
    obj = {"date": "2025-10-22", "processed_ids": ids(1, 2), "last_execution": None, "total_processed": 2,
           "executions": [], "created_at": "2025-10-22T08:00:00Z",
           "partitions": {H8: {"ids": ids(1, 2), "staged": None, "run_id": "r", "note": "kept"}},
           "materialized_hours": {H8: "2025-10-22T09:05:00Z", H9: "2025-10-22T10:05:00Z"},
           "recovered_from_bronze": {"files": 1}}
    state = DayState.from_json(obj, DAY)
    assert state.to_json() == obj
    assert list(state.to_json())[:6] == ["date", "processed_ids", "last_execution", "total_processed",
                                         "executions", "created_at"]
    assert json.loads(state.encode_json()) == obj
    assert DayState.decode(state.encode(), DAY).to_json() == obj  # the compact form holds the same


def test_claim_then_retire_then_drop_lost():
    state = DayState.new(DAY, "2025-10-22T08:00:00Z")
    held = state.claim(H8, ids(3, 1), "_staging/a", "2025-10-22T09:00:00Z", {"input_records": 2, "run_id": "r"})
    assert held == ids(1, 3) and state.processed_ids == ids(1, 3) and state.total_processed == 2
    assert state.open_claims() == {H8: Claim(ids(1, 3), "_staging/a", {"run_id": "r",
                                                                       "committed_at": "2025-10-22T09:00:00Z"})}
    assert state.executions[-1]["new_records"] == 2 and state.last_execution == "2025-10-22T09:00:00Z"
    # A second claim of the same hour adds to what it held.
    assert state.claim(H8, ids(2), "_staging/b", "2025-10-22T10:00:00Z", {}) == ids(1, 2, 3)
    state.claim(H9, ids(4), "_staging/c", "2025-10-22T10:00:00Z", {})
    state.retire([H8])
    assert set(state.open_claims()) == {H9}
    state.drop_lost({H9: set(ids(4))})
    assert H9 not in state.partitions and state.processed_ids == ids(1, 2, 3) and 4 not in state.ids


def test_hours_are_confirmed_once_with_or_without_records():
    state = DayState.new(DAY, "t")
    state.claim(H9, ids(1), "_staging/a", "t", {})
    assert state.confirm_hours([H9, H8], "2025-10-22T10:05:00Z")
    assert not state.confirm_hours([H8], "2025-10-22T11:05:00Z")  # already recorded: nothing to write
    assert state.materialized_hours == {H8: "2025-10-22T10:05:00Z", H9: "2025-10-22T10:05:00Z"}
    assert list(state.to_json()["materialized_hours"]) == [H8, H9]  # in time order
    legacy = DayState.new(DAY, "t")  # a state written before `materialized_hours`: its claims still count
    legacy.claim(H9, ids(1), "_staging/a", "t", {})
    assert legacy.ingested_hours() == {H9} and state.ingested_hours() == {H8, H9}


def test_a_copy_is_independent():
    state = DayState.new(DAY, "t")
    state.claim(H8, ids(1), "_staging/a", "t", {})
    twin = state.copy()
    twin.claim(H8, ids(2), "_staging/b", "t", {})
    twin.retire([H8])
    assert state.processed_ids == ids(1) and state.partitions[H8].staged == "_staging/a"
    # The ID set is shared until one side adds IDs: neither sees the other's.
    assert state.ids == set(ids(1)) and twin.ids == set(ids(1, 2))
    untouched = state.copy()
    state.add_ids(ids(5))
    assert untouched.ids == set(ids(1)) and twin.ids == set(ids(1, 2)) and state.ids == set(ids(1, 5))


def test_add_ids_keeps_the_list_sorted_and_unique_whatever_the_input_order():
    state = DayState.new(DAY, "t")
    state.add_ids(ids(5, 1, 9))
    added = state.add_ids(ids(7, 3, 7, 5, 2, 3))
    assert added == ids(2, 3, 7)
    assert state.processed_ids == ids(1, 2, 3, 5, 7, 9) and state.ids == set(ids(1, 2, 3, 5, 7, 9))


@pytest.mark.parametrize(("change", "problem"), [
    (lambda o: o.update(total_processed=5), "disagrees"),
    (lambda o: o.update(date="2025-10-23"), "expected '2025-10-22'"),
    (lambda o: o["partitions"][H8].update(ids=ids(9)), "missing from processed_ids"),
    (lambda o: o.update(processed_ids=ids(1, 1), total_processed=2), "twice"),
    (lambda o: o.update(materialized_hours=[H8]), "materialized_hours"),
    (lambda o: o.update(materialized_hours={H8: 1}), "materialized_hours"),
])
def test_a_broken_state_is_refused_naming_the_problem(change, problem):
    obj = {"date": "2025-10-22", "processed_ids": ids(1), "last_execution": None, "total_processed": 1,
           "executions": [], "created_at": None, "partitions": {H8: {"ids": ids(1), "staged": None}}}
    change(obj)
    with pytest.raises(CorruptState, match=problem):
        DayState.from_json(obj, DAY)


def test_transact_retries_a_lost_swap_and_undoes_the_attempt(tmp_path):
    store = LocalObjectStore(tmp_path)
    manager = StateManager(store)
    undone: list[int] = []
    calls = 0

    def change(state: DayState) -> tuple[int, bool]:
        nonlocal calls
        calls += 1
        if calls == 1:  # another writer wins between our load and our swap
            StateManager(store).transact("pncp", DAY, lambda s: (s.add_ids(ids(7)), True))
        state.add_ids(ids(calls))
        return calls, True

    state, result = manager.transact("pncp", DAY, change, on_conflict=undone.append)
    assert (result, undone) == (2, [1])
    assert state.processed_ids == ids(2, 7) == StateManager(store).load_state("pncp", DAY)["processed_ids"]


def test_transact_recognises_its_own_write_whose_answer_was_lost(tmp_path):
    """The write lands, its answer is lost, the storage client's retry then fails its own condition."""
    store = LocalObjectStore(tmp_path)

    class LostAnswer(LocalObjectStore):
        def put(self, key, data, **conditions):
            store.put(key, data, **conditions)
            raise VersionConflict("the retry of our own write failed its condition")

    manager = StateManager(LostAnswer(tmp_path))
    undone: list[str] = []
    state, _ = manager.transact("pncp", DAY, lambda s: (s.add_ids(ids(1)), True), on_conflict=undone.append)
    assert undone == [] and state.processed_ids == ids(1)
    assert StateManager(store).load_state("pncp", DAY)["processed_ids"] == ids(1)


def test_transact_writes_nothing_when_the_change_says_so(tmp_path):
    store = LocalObjectStore(tmp_path)
    _, result = StateManager(store).transact("pncp", DAY, lambda s: ("nothing", False))
    assert result == "nothing" and not store.exists(layout.state_key("pncp", DAY))
