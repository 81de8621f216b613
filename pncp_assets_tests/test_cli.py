"""`python -m pncp_assets.state`, run as a user would, on local storage."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pncp_assets.document_api import StateManager
from pncp_assets.storage import LocalObjectStore


def run_cli(args: list[str], env_dir, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "STORAGE_TYPE": "local", "PNCP_DATA_DIR": str(env_dir)}
    return subprocess.run(
        [sys.executable, "-m", "pncp_assets.state", *args],
        input=stdin, capture_output=True, text=True, env=env, timeout=60,
    )


@pytest.fixture
def data_dir(tmp_path, sample_records):
    manager = StateManager(LocalObjectStore(tmp_path / "bronze"))
    manager.update_state("pncp", "20251022", [r["numeroControlePNCP"] for r in sample_records[:3]],
                         {"duplicates_filtered": 0, "input_records": 3})
    return tmp_path


def test_summary(data_dir):
    result = run_cli(["--source", "pncp", "--date", "20251022", "--action", "summary"], data_dir)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["total_processed"] == 3 and summary["total_executions"] == 1


def test_load(data_dir, sample_records):
    result = run_cli(["--date", "2025-10-22", "--action", "load"], data_dir)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["processed_ids"] == sorted(r["numeroControlePNCP"] for r in sample_records[:3])


def test_filter_from_stdin_and_file(data_dir, sample_records, tmp_path):
    result = run_cli(["--date", "20251022", "--action", "filter"], data_dir, stdin=json.dumps(sample_records[:5]))
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)
    assert (stats["input_records"], stats["new_records"], stats["duplicates_filtered"], stats["filter_rate"]) == (
        5, 2, 3, 60.0)
    assert "State filtering: 5 input -> 2 new (3 duplicates filtered)" in result.stderr
    path = tmp_path / "records.json"
    path.write_text(json.dumps(sample_records))
    from_file = run_cli(["--date", "20251022", "--action", "filter", "--input", str(path)], data_dir)
    assert json.loads(from_file.stdout)["new_records"] == 3


@pytest.mark.parametrize(
    "args",
    [
        ["--date", "2025-13-45", "--action", "load"],
        ["--date", "yesterday", "--action", "load"],
        ["--date", "20251022", "--action", "drop"],
        ["--date", "20251022"],
        ["--date", "20251022", "--action", "load", "--source", "../etc"],
        ["--date", "20251022", "--action", "load", "--source", "pncp_contratoz"],  # a typo: the layers are listed
    ],
)
def test_bad_input_exits_2_with_one_line(data_dir, args):
    result = run_cli(args, data_dir)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "error" in lines[0]


def test_filter_with_non_json_input_exits_2(data_dir):
    result = run_cli(["--date", "20251022", "--action", "filter"], data_dir, stdin="{oops")
    assert result.returncode == 2
    assert "not JSON" in result.stderr


def test_bad_storage_and_input_paths_exit_2_in_one_line_and_create_nothing(data_dir, tmp_path):
    a_file = tmp_path / "not_a_dir"
    a_file.write_text("x")
    missing = tmp_path / "typo"
    cases = [
        (["--date", "20251022", "--action", "filter", "--input", str(tmp_path / "absent.json")], data_dir,
         "no such file"),
        (["--date", "20251022", "--action", "filter", "--input", str(tmp_path)], data_dir, "is a directory"),
        (["--date", "20251022", "--action", "summary"], a_file, "is a file"),
        (["--date", "20251022", "--action", "summary"], missing, "no Bronze storage at"),
    ]
    for args, env_dir, message in cases:
        result = run_cli(args, env_dir)
        assert result.returncode == 2, (args, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], lines
    assert not missing.exists() and a_file.read_text() == "x"


def test_summary_of_a_day_without_state_says_so(data_dir):
    result = run_cli(["--date", "20251023", "--action", "summary"], data_dir)
    assert result.returncode == 0
    summary = json.loads(result.stdout)
    assert summary["state_exists"] is False
    assert summary["created_at"] is None and summary["last_execution"] is None  # nothing was ever created
    assert "No state file for pncp 2025-10-23" in result.stderr
    assert json.loads(run_cli(["--date", "20251022", "--action", "summary"], data_dir).stdout)["state_exists"]


def test_rebuild_writes_the_state_from_bronze_and_its_dry_run_writes_nothing(tmp_path, sample_records):
    from pncp_assets import layout
    from pncp_assets_tests.support.records import encode_parquet

    store = LocalObjectStore(tmp_path / "bronze")
    for hour, chunk in ((8, sample_records[:3]), (9, sample_records[3:5])):
        key = layout.delta_key("pncp", f"2025-10-22-{hour:02d}:00")
        store.put(key, encode_parquet(chunk))  # Bronze written before there was any state
    state_key = layout.state_key("pncp", "20251022")

    dry = run_cli(["--date", "20251022", "--action", "rebuild", "--dry-run"], tmp_path)
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    assert plan["written"] is False and plan["total_processed"] == 5 and plan["files"] == 2
    assert plan["partitions"] == {"2025-10-22-08:00": 3, "2025-10-22-09:00": 2}
    assert not store.exists(state_key)
    assert "would rebuild 5 IDs from 2 Bronze file(s)" in dry.stderr and " rebuilt " not in dry.stderr

    done = run_cli(["--date", "20251022", "--action", "rebuild"], tmp_path)
    assert done.returncode == 0 and json.loads(done.stdout)["written"] is True
    assert "rebuilt 5 IDs from 2 Bronze file(s)" in done.stderr
    state = StateManager(store).load_state("pncp", "20251022")
    assert state["processed_ids"] == sorted(r["numeroControlePNCP"] for r in sample_records[:5])
    assert run_cli(["--date", "20251022", "--action", "filter"], tmp_path,
                   stdin=json.dumps(sample_records[:6])).stdout.count('"new_records": 1') == 1
