"""The ObjectStore contract, run against both backends (local files and a real SeaweedFS S3)."""

from __future__ import annotations

from collections import Counter

import pytest

from pncp_assets.storage import InvalidKey, NotFound, ObjectStore, S3ObjectStore, StorageError, VersionConflict
from pncp_assets_tests.support.concurrency import run_together


def test_put_then_get_returns_bytes_and_version(store: ObjectStore):
    version = store.put("a/b/c.bin", b"hello")
    got = store.get("a/b/c.bin")
    assert got.data == b"hello"
    assert got.version == version
    assert store.version("a/b/c.bin") == version


def test_put_overwrites_and_changes_version(store: ObjectStore):
    v1 = store.put("k.json", b"1")
    v2 = store.put("k.json", b"2")
    assert v1 != v2
    assert store.get("k.json").data == b"2"


def test_missing_key_raises_not_found_for_get(store: ObjectStore):
    with pytest.raises(NotFound):
        store.get("nope/missing.json")
    assert store.version("nope/missing.json") is None
    assert not store.exists("nope/missing.json")


def test_not_found_is_a_storage_error_and_key_error(store: ObjectStore):
    with pytest.raises(StorageError):
        store.get("missing")
    with pytest.raises(KeyError):
        store.get("missing")


def test_put_if_absent_creates_once(store: ObjectStore):
    store.put("once", b"first", if_absent=True)
    with pytest.raises(VersionConflict):
        store.put("once", b"second", if_absent=True)
    assert store.get("once").data == b"first"


def test_put_if_version_is_compare_and_swap(store: ObjectStore):
    v1 = store.put("cas", b"1")
    v2 = store.put("cas", b"2", if_version=v1)
    with pytest.raises(VersionConflict):
        store.put("cas", b"3", if_version=v1)  # stale version
    assert store.get("cas").data == b"2"
    store.put("cas", b"4", if_version=v2)
    assert store.get("cas").data == b"4"


def test_put_if_version_on_missing_key_conflicts(store: ObjectStore):
    with pytest.raises(VersionConflict):
        store.put("never-written", b"x", if_version="0" * 32)


def test_list_by_prefix_is_sorted_and_scoped(store: ObjectStore):
    for key in ["p/year=2025/b.parquet", "p/year=2025/a.parquet", "p/_state/s.json", "q/x", "p2/y"]:
        store.put(key, b"x")
    assert store.list("p/year=2025/") == ["p/year=2025/a.parquet", "p/year=2025/b.parquet"]
    assert store.list("p/") == ["p/_state/s.json", "p/year=2025/a.parquet", "p/year=2025/b.parquet"]
    assert store.list("p") == [
        "p/_state/s.json", "p/year=2025/a.parquet", "p/year=2025/b.parquet", "p2/y",
    ]
    assert store.list("zzz/") == []


def test_delete_removes_and_is_idempotent(store: ObjectStore):
    store.put("d/x", b"1")
    store.delete("d/x")
    assert not store.exists("d/x")
    assert store.list("d/") == []
    store.delete("d/x")  # missing: no error


def test_json_helpers_round_trip(store: ObjectStore):
    store.put_json("j.json", {"a": [1, "ç"]})
    assert store.get_json("j.json") == {"a": [1, "ç"]}


@pytest.mark.parametrize("bad", ["", "/abs/key", "a/../b", "../x", "a//b", "a/./b", "a\x00b", "a\\b", "a/b/"])
def test_keys_that_could_escape_the_layout_are_refused(store: ObjectStore, bad: str):
    with pytest.raises(InvalidKey):
        store.put(bad, b"x")
    with pytest.raises(InvalidKey):
        store.get(bad)


def _race(n: int, attempt) -> list[str]:
    """Run `attempt(i)` in n threads released together; returns each thread's outcome."""
    outcomes: list[str] = []

    def contender(i: int) -> None:
        try:
            attempt(i)
            outcomes.append(f"won:{i}")  # list.append is atomic in CPython
        except VersionConflict:
            outcomes.append("lost")

    assert run_together(n, contender) == []
    return outcomes


def test_16_threads_racing_compare_and_swap_have_one_winner_per_round(store: ObjectStore):
    key = "race/counter"
    version = store.put(key, b"0")
    for round_no in range(1, 4):
        outcomes = _race(16, lambda i, v=version, r=round_no: store.put(key, f"{r}:{i}".encode(), if_version=v))
        winners = [o for o in outcomes if o.startswith("won")]
        assert len(outcomes) == 16
        assert len(winners) == 1, f"round {round_no}: {Counter(outcomes)}"
        current = store.get(key)
        assert current.data == f"{round_no}:{winners[0].split(':')[1]}".encode()
        version = current.version


def test_16_threads_racing_put_if_absent_have_one_winner(store: ObjectStore):
    outcomes = _race(16, lambda i: store.put("race/absent", str(i).encode(), if_absent=True))
    winners = [o for o in outcomes if o.startswith("won")]
    assert len(winners) == 1
    assert store.get("race/absent").data == winners[0].split(":")[1].encode()


def test_local_store_leaves_no_temp_files_visible(local_store):
    local_store.put("x/y.parquet", b"1")
    assert local_store.list("") == ["x/y.parquet"]


def test_s3_wrong_credentials_error_names_endpoint_and_bucket_not_secret(seaweed, s3_store):
    secret = "WrongSecretValue-do-not-leak-123456"
    bad = S3ObjectStore(seaweed.client("AKWRONGKEY0000000000", secret), s3_store.bucket)
    with pytest.raises(StorageError) as info:
        bad.put("k", b"x")
    message = str(info.value)
    assert seaweed.endpoint in message
    assert s3_store.bucket in message
    assert secret not in message
    assert secret not in repr(info.value)
    with pytest.raises(StorageError) as info_get:
        bad.get("k")
    assert seaweed.endpoint in str(info_get.value) and secret not in str(info_get.value)
    assert not isinstance(info_get.value, NotFound)
