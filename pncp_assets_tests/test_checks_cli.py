"""`python -m pncp_assets.checks`: the check rules over a day or a range of days in one command, for CI."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pncp_assets import bronze, layout
from pncp_assets.assets import LAYER_GRAPHS
from pncp_assets.checks import main
from pncp_assets.pncp.simulator import RunningSimulator, SimulatorConfig
from pncp_assets.state import StateManager
from pncp_assets.storage import LocalObjectStore
from pncp_assets_tests.support.pipeline import Pipeline, end_of_hour, partition, storage_resource

DAYS = [dt.date(2025, 10, 22), dt.date(2025, 10, 23)]


@pytest.fixture
def two_days(tmp_path, monkeypatch):
    """Two ingested days on local storage, and the environment pointing at them."""
    store = LocalObjectStore(tmp_path / "data" / "bronze")
    with RunningSimulator(SimulatorConfig(seed=41, volume=200, update_fraction=0.3)) as sim:
        p = Pipeline(sim, store, storage_resource(store), graphs=LAYER_GRAPHS)  # both layers, as the job runs
        for day in DAYS:
            assert p.run_range(partition(day, 0), partition(day, 23), now=end_of_hour(day, 23)).success
    monkeypatch.setenv("STORAGE_TYPE", "local")
    monkeypatch.setenv("PNCP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("BRONZE_BUCKET", raising=False)
    return p


def copy_row(store, source_key: str, target_key: str) -> str:
    """Append the first row of one delta file to another; returns the copied ID."""
    row = bronze.read_parquet(store.get(source_key).data).slice(0, 1)
    target = bronze.read_parquet(store.get(target_key).data)
    store.put(target_key, bronze.table_to_parquet(bronze.concat_tables([target, row])))
    return row.column("numeroControlePNCP")[0].as_py()


def snapshot(root: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def test_a_clean_range_passes_with_a_summary_and_writes_nothing(two_days, capsys):
    before = snapshot(Path(os.environ["PNCP_DATA_DIR"]))
    assert main(["--from", "2025-10-22", "--to", "2025-10-23"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    expected = []
    for source in ("pncp", "pncp_versions"):  # both layers by default
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
    entry = store.get_json(layout.state_key("pncp", DAYS[1]))
    entry["partitions"][target]["ids"] = sorted([*entry["partitions"][target]["ids"], moved])
    store.put_json(layout.state_key("pncp", DAYS[1]), entry)
    assert main(["--from", "2025-10-22", "--to", "2025-10-23"]) == 0
    out = capsys.readouterr().out
    assert "WARNING 1 IDs are in more than one day" in out
    assert f"  {moved}: 2025-10-22, 2025-10-23" in out
    assert main(["--from", "2025-10-23"]) == 0  # one day alone cannot see it
    assert "WARNING" not in capsys.readouterr().out


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
    result = subprocess.run([sys.executable, "-m", "pncp_assets.checks", "--from", "2025-10-22"],
                            env=dict(os.environ), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("Checked 24 partitions of pncp from 2025-10-22 to 2025-10-22:")
