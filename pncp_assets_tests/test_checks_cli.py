"""`python -m pncp_assets.checks`: the check rules over a day or a range of days in one command, for CI."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pncp_assets import bronze, layout
from pncp_assets.checks import main
from pncp_assets.defs.assets import LAYER_GRAPHS
from pncp_assets.document_api import StateManager
from pncp_assets.layers import FIRST_SEEN, LAYERS
from pncp_assets.pncp.simulator import RunningSimulator, SimulatorConfig
from pncp_assets.storage import LocalObjectStore
from pncp_assets_tests.support.pipeline import Pipeline, end_of_hour, partition, storage_resource

DAYS = [dt.date(2025, 10, 22), dt.date(2025, 10, 23)]


@pytest.fixture(scope="module")
def ingested(tmp_path_factory) -> Path:
    """Two days ingested once for the module (every layer, as the job runs): the data folder."""
    data = tmp_path_factory.mktemp("ingested") / "data"
    store = LocalObjectStore(data / "bronze")
    with RunningSimulator(SimulatorConfig(seed=41, volume=200, update_fraction=0.3)) as sim:
        p = Pipeline(sim, store, storage_resource(store), graphs=LAYER_GRAPHS)
        for day in DAYS:
            assert p.run_range(partition(day, 0), partition(day, 23), now=end_of_hour(day, 23)).success
    return data


@pytest.fixture
def two_days(ingested, tmp_path, monkeypatch):
    """A copy of the two ingested days for one test (which may damage it), and the environment pointing at it."""
    data = tmp_path / "data"
    shutil.copytree(ingested, data)
    store = LocalObjectStore(data / "bronze")
    monkeypatch.setenv("STORAGE_TYPE", "local")
    monkeypatch.setenv("PNCP_DATA_DIR", str(data))
    monkeypatch.delenv("BRONZE_BUCKET", raising=False)
    return Pipeline(None, store, storage_resource(store))  # no simulator: for what is in storage


def copy_row(store, source_key: str, target_key: str) -> str:
    """Append the first row of one delta file to another; returns the copied ID."""
    row = bronze.read_parquet(store.get(source_key).data).slice(0, 1)
    target = bronze.read_parquet(store.get(target_key).data)
    store.put(target_key, bronze.table_to_parquet(bronze.concat_tables([target, row], FIRST_SEEN.schema)))
    return row.column("numeroControlePNCP")[0].as_py()


def snapshot(root: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def test_a_clean_range_passes_with_a_summary_and_writes_nothing(two_days, capsys):
    before = snapshot(Path(os.environ["PNCP_DATA_DIR"]))
    assert main(["--from", "2025-10-22", "--to", "2025-10-23"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    expected = []
    for source in [layer.source for layer in LAYERS]:  # every layer by default
        deltas = {d: two_days.delta_ids(d, source) for d in DAYS}
        files = sum(len(v) for v in deltas.values())
        rows = sum(len(ids) for v in deltas.values() for ids in v.values())
        assert files and rows
        expected.append(f"Checked 48 partitions of {source} from 2025-10-22 to 2025-10-23: {files} files, "
                        f"{rows} rows; passed")
    assert out == expected
    assert snapshot(Path(os.environ["PNCP_DATA_DIR"])) == before


def test_a_duplicate_across_hours_fails_naming_the_id_and_both_files(two_days, capsys):
    store = two_days.store
    first, second = sorted(two_days.delta_ids(DAYS[1]))[:2]
    planted = copy_row(store, layout.delta_key("pncp", first), layout.delta_key("pncp", second))
    assert main(["--from", "2025-10-22", "--to", "2025-10-23"]) == 1
    out = capsys.readouterr().out
    assert f"FAILED {first}: 1 IDs of {first} are also in other delta files of the day" in out
    assert f"FAILED {second}:" in out
    line = next(ln for ln in out.splitlines() if ln.strip().startswith(planted))
    assert layout.delta_key("pncp", first) in line and layout.delta_key("pncp", second) in line
    summaries = [ln for ln in out.splitlines() if ln.startswith("Checked ")]
    assert summaries[0].startswith("Checked 48 partitions of pncp ") and summaries[0].endswith("FAILED (2 partitions)")
    assert summaries[1].startswith("Checked 48 partitions of pncp_versions ") and summaries[1].endswith("passed")


def test_an_id_in_two_days_is_a_warning_with_the_id_and_the_days(two_days, capsys):
    """The API moved a record's publication date: each day holds it once and agrees with its state."""
    store = two_days.store
    source = sorted(two_days.delta_ids(DAYS[0]))[0]
    target = sorted(two_days.delta_ids(DAYS[1]))[0]
    moved = copy_row(store, layout.delta_key("pncp", source), layout.delta_key("pncp", target))
    StateManager(store).update_state("pncp", DAYS[1], [moved])
    entry = StateManager(store).load_state("pncp", DAYS[1])
    entry["partitions"][target]["ids"] = sorted([*entry["partitions"][target]["ids"], moved])
    store.put_json(layout.state_key("pncp", DAYS[1]), entry)
    assert main(["--from", "2025-10-22", "--to", "2025-10-23"]) == 0
    out = capsys.readouterr().out
    assert "WARNING 1 IDs are in more than one day" in out
    assert f"  {moved}: 2025-10-22, 2025-10-23" in out
    assert main(["--from", "2025-10-23"]) == 0  # one day alone cannot see it
    assert "WARNING" not in capsys.readouterr().out


def test_a_finished_day_never_ingested_fails_listing_its_hours(two_days, capsys):
    assert main(["--from", "2025-10-21", "--to", "2025-10-23", "--source", "pncp"]) == 1
    out = capsys.readouterr().out
    assert "FAILED 24 hours of 2025-10-21: never ingested: no run recorded in the day's state and no delta file" in out
    assert "  hours: 2025-10-21-00:00 .. 2025-10-21-23:00" in out
    assert out.strip().splitlines()[-1].endswith("FAILED (24 partitions)")


def test_hours_never_run_fail_while_hours_run_with_nothing_to_file_pass(tmp_path, monkeypatch, capsys):
    """An hour whose run filed nothing is recorded in the day's state; an hour whose run never happened is a
    hole, even when a later hour took its records (as late ones)."""
    day = dt.date(2025, 10, 24)
    store = LocalObjectStore(tmp_path / "data" / "bronze")
    with RunningSimulator(SimulatorConfig(seed=43, volume=60)) as sim:
        p = Pipeline(sim, store, storage_resource(store))
        assert p.run_range(partition(day, 0), partition(day, 11), now=end_of_hour(day, 11)).success
        assert p.run_range(partition(day, 14), partition(day, 23), now=end_of_hour(day, 23)).success
    monkeypatch.setenv("STORAGE_TYPE", "local")
    monkeypatch.setenv("PNCP_DATA_DIR", str(tmp_path / "data"))
    ran_empty = [h for h in layout.day_hours(day)[:12] if h not in p.delta_ids(day)]
    assert ran_empty, "the simulated day has run hours that filed nothing"
    assert main(["--from", "2025-10-24", "--source", "pncp"]) == 1
    out = capsys.readouterr().out
    assert "FAILED 2 hours of 2025-10-24: never ingested" in out
    assert "  hours: 2025-10-24-12:00 .. 2025-10-24-13:00" in out
    assert not any(h in out for h in ran_empty)


def test_hours_not_yet_due_are_not_gaps(two_days):
    from pncp_assets.brasilia import TZ
    from pncp_assets.consistency import check_range, format_report

    # 2025-10-23-23:00 is due at 00:30 of the 24th (the hour's end + DUE_AFTER_END), Brasília time.
    just_before = dt.datetime(2025, 10, 24, 0, 29, 59, tzinfo=TZ)
    early = check_range(two_days.store, DAYS[0], DAYS[1], FIRST_SEEN, now=just_before)
    assert early.passed and early.not_due == 1
    assert format_report(early)[-1].endswith("(1 hours not yet due, not checked for gaps); passed")

    # At 02:30 of the 24th its 00:00 and 01:00 are due and missing; the other 22 hours are not due yet.
    later = check_range(two_days.store, DAYS[0], DAYS[1] + dt.timedelta(days=1), FIRST_SEEN,
                        now=dt.datetime(2025, 10, 24, 2, 30, tzinfo=TZ))
    assert later.not_due == 22
    gaps = [(f["day"], f["hours"]) for f in later.failures]
    assert gaps == [("2025-10-24", ["2025-10-24-00:00", "2025-10-24-01:00"])]


def test_an_unknown_source_is_a_usage_error_listing_the_known_ones(two_days, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--from", "2025-10-22", "--source", "foo"])
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "invalid choice: 'foo'" in err and "'pncp'" in err and "'pncp_versions'" in err and "'all'" in err
    assert len(err.splitlines()) == 1


def test_the_command_line_refuses_bad_input_in_one_line_and_creates_nothing(tmp_path):
    missing = tmp_path / "nowhere"
    env = {**os.environ, "STORAGE_TYPE": "local", "PNCP_DATA_DIR": str(missing)}
    cases = {
        ("--from", "2025-10-23", "--to", "2025-10-22"): "is before --from",
        ("--from", "2025-13-01"): "invalid date",
        ("--from", "2025-10-22"): "no Bronze storage at",
    }
    for args, message in cases.items():
        result = subprocess.run([sys.executable, "-m", "pncp_assets.checks", *args], env=env,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not missing.exists()


def test_the_range_check_runs_against_s3(s3_env, seaweed, tmp_path):
    from pncp_assets.storage import S3ObjectStore

    store = S3ObjectStore(seaweed.client(), s3_env)
    with RunningSimulator(SimulatorConfig(seed=42, volume=100)) as sim:
        p = Pipeline(sim, store, storage_resource(store, seaweed))
        assert p.run_range(partition(DAYS[0], 0), partition(DAYS[0], 23), now=end_of_hour(DAYS[0], 23)).success
    result = subprocess.run([sys.executable, "-m", "pncp_assets.checks", "--from", "2025-10-22", "--source",
                             "pncp"], env=dict(os.environ), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("Checked 24 partitions of pncp from 2025-10-22 to 2025-10-22:")


def _checks(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pncp_assets.checks", *args], env=env, capture_output=True,
                          text=True, timeout=120)


def test_a_typo_is_a_usage_error_and_a_range_before_the_start_names_it(two_days):
    env = dict(os.environ)
    future = _checks(["--from", "2027-01-01", "--to", "2027-01-02"], env)  # a typo'd year
    assert future.returncode == 2 and "is in the future" in future.stderr
    before = _checks(["--from", "2024-03-01", "--to", "2024-03-02"], {**env, "PNCP_START_DATE": "2025-01-01"})
    assert before.returncode == 2 and "before the pipeline's first day, 2025-01-01 (PNCP_START_DATE)" in before.stderr
    # A range that starts before it: the days before are counted, named, not judged; the rest as usual.
    straddling = _checks(["--from", "2025-10-20", "--to", "2025-10-23", "--source", "pncp"],
                         {**env, "PNCP_START_DATE": "2025-10-22"})
    assert straddling.returncode == 0, straddling.stdout + straddling.stderr
    assert "(2 days before the pipeline's start, 2025-10-22: not judged; PNCP_START_DATE); passed" in straddling.stdout


def test_storage_that_cannot_be_reached_has_its_own_exit_code(s3_env, seaweed, tmp_path):
    """S3 with a wrong secret, or an endpoint where nothing listens: exit 3, never 1 (1 says the data failed)."""
    from pncp_assets_tests.support.seaweed import free_port

    wrong_key = {**os.environ, "AWS_SECRET_ACCESS_KEY": "not-the-secret", "S3_MAX_ATTEMPTS": "1"}
    nothing_there = {**os.environ, "S3_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}", "S3_MAX_ATTEMPTS": "1"}
    for env in (wrong_key, nothing_there):
        result = _checks(["--from", "2025-10-22", "--source", "pncp"], env)
        assert result.returncode == 3, result.stdout + result.stderr
        assert "storage error (exit 3: the data was not checked)" in result.stderr
        assert "not-the-secret" not in result.stderr + result.stdout
