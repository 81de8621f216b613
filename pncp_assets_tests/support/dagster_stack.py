"""A real Dagster deployment on loopback for the end-to-end tests and `bench/bench_backfill.py`: the
PNCP simulator, `dagster-webserver` and `dagster-daemon`, each its own process with its own log, on a
fresh DAGSTER_HOME initialised by `dagster instance migrate` before either server starts (started
together on a new SQLite home they can both migrate at once and fail), and backfills launched through
the webserver's GraphQL API as the UI launches them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml

from pncp_assets_tests.support.seaweed import free_port

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DONE = ("COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED")

LAUNCH = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on UnauthorizedError { message }
  }
}"""
STATUS = """
query($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { status numPartitions }
    ... on PythonError { message }
  }
}"""
RUNS = """
query($id: String!) {
  runsOrError(filter: {tags: [{key: "dagster/backfill", value: $id}]}) {
    ... on Runs { results { runId status startTime endTime tags { key value } } }
  }
}"""


def s3_pipeline_env(seaweed: Any, bucket: str, interval_s: float) -> dict[str, str]:
    """The pipeline's settings for Bronze on the test S3 server, three modalidades, paced at `interval_s`."""
    return {
        "STORAGE_TYPE": "s3", "S3_ENDPOINT_URL": seaweed.endpoint, "BRONZE_BUCKET": bucket,
        "AWS_ACCESS_KEY_ID": seaweed.access_key, "AWS_SECRET_ACCESS_KEY": seaweed.secret_key,
        "AWS_REGION": "us-east-1", "PNCP_REQUEST_INTERVAL_S": str(interval_s),
        "PNCP_MODALIDADES": "6,8,9", "PNCP_STEP_RETRY_DELAY_S": "1",
    }


def _start(args: list[str], env: dict[str, str], log: Path, cwd: Path = REPO) -> subprocess.Popen:
    return subprocess.Popen(args, cwd=cwd, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)


class DagsterUI:
    """What the UI does, through the webserver's GraphQL API at `self.url`; and what the simulator at
    `self.sim_url` was asked."""

    url: str
    sim_url: str

    def simulator_log(self) -> list[dict[str, Any]]:
        return requests.get(f"{self.sim_url}/_sim/log", timeout=10).json()

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        from dagster_graphql import DagsterGraphQLClient

        host, port = self.url.removeprefix("http://").split(":")
        return DagsterGraphQLClient(host, port_number=int(port), timeout=60)._execute(query, variables or {})

    def launch_asset_backfill(self, assets: list[str], partitions: list[str]) -> str:
        """What the UI's *Materialize -> pick partitions* launches for the selected assets."""
        params = {"assetSelection": [{"path": [a]} for a in assets], "partitionNames": partitions}
        launched = self.graphql(LAUNCH, {"params": params})["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        return launched["backfillId"]

    def backfill(self, assets: list[str], partitions: list[str], timeout_s: float = 3600) -> dict[str, Any]:
        """Launch an asset backfill and wait for it: its status, wall seconds, runs and API requests."""
        start = time.perf_counter()
        backfill_id = self.launch_asset_backfill(assets, partitions)
        status = self.wait_backfill(backfill_id, timeout_s=timeout_s)
        return {"status": status, "seconds": time.perf_counter() - start, "runs": self.backfill_runs(backfill_id),
                "requests": len(self.simulator_log())}

    def wait_backfill(self, backfill_id: str, timeout_s: float = 600) -> str:
        deadline = time.monotonic() + timeout_s
        status = None
        while time.monotonic() < deadline:
            status = self.graphql(STATUS, {"id": backfill_id})["partitionBackfillOrError"]["status"]
            if status in DONE:
                return status
            time.sleep(1)
        return f"TIMEOUT ({status})"

    def backfill_runs(self, backfill_id: str) -> list[dict[str, Any]]:
        return self.graphql(RUNS, {"id": backfill_id})["runsOrError"]["results"]


@dataclass
class DagsterStack(DagsterUI):
    """Start with `with DagsterStack(workdir, env, simulator_args) as stack:`; `env` holds the storage
    settings (the PNCP URL is added). `max_concurrent_runs` limits runs as a deployment would."""

    workdir: Path
    env: dict[str, str]
    simulator_args: list[str] = field(default_factory=list)
    max_concurrent_runs: int = 3
    code_dir: Path = REPO  # the checkout whose workspace.yaml and code the servers load
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def home(self) -> Path:
        return self.workdir / "dagster_home"

    def log(self, name: str) -> Path:
        return self.workdir / f"{name}.log"

    def __enter__(self) -> DagsterStack:
        self.home.mkdir(parents=True, exist_ok=True)
        config = yaml.safe_load((REPO / "dagster.yaml").read_text())  # the shipped instance settings
        config.setdefault("concurrency", {})["runs"] = {"max_concurrent_runs": self.max_concurrent_runs}
        (self.home / "dagster.yaml").write_text(yaml.safe_dump(config))
        sim_port, web_port = free_port(), free_port()
        self.sim_url = f"http://127.0.0.1:{sim_port}"
        self.url = f"http://127.0.0.1:{web_port}"
        self.env = {**os.environ, **self.env, "DAGSTER_HOME": str(self.home), "PNCP_API_BASE_URL": self.sim_url}
        if self.code_dir != REPO:
            self.env["PYTHONPATH"] = str(self.code_dir)
        try:
            self.procs["simulator"] = _start([sys.executable, "-m", "pncp_assets.pncp.simulator", "--port",
                                              str(sim_port), *self.simulator_args], self.env, self.log("simulator"))
            migrate = subprocess.run([str(BIN / "dagster"), "instance", "migrate"], env=self.env, cwd=REPO,
                                     capture_output=True, text=True, timeout=300)
            assert migrate.returncode == 0, migrate.stdout[-2000:] + migrate.stderr[-2000:]
            self.procs["webserver"] = _start([str(BIN / "dagster-webserver"), "-w", "workspace.yaml", "-h",
                                              "127.0.0.1", "-p", str(web_port)], self.env, self.log("webserver"),
                                             self.code_dir)
            self.procs["daemon"] = _start([str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"], self.env,
                                          self.log("daemon"), self.code_dir)
            self._wait_http(f"{self.url}/server_info")
            self._wait_http(f"{self.sim_url}/_sim/log")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs.values():
            _stop(proc)

    def _wait_http(self, url: str, timeout_s: float = 180) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise AssertionError(f"{name} exited early:\n{self.log(name).read_text()[-3000:]}")
            try:
                if requests.get(url, timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)
        raise AssertionError(f"{url} did not answer in {timeout_s}s:\n" + self.tail())

    def tail(self, chars: int = 2000) -> str:
        return "\n".join(f"--- {n}\n{self.log(n).read_text()[-chars:]}" for n in self.procs)
