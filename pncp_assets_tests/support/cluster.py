"""The local cluster of `scripts/cluster.sh` (PostgreSQL, Redis, Celery run workers, webserver, daemon)
brought up for a test exactly as a user brings it up, with the simulator beside it, and taken down after."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from pncp_assets_tests.support.dagster_stack import REPO, DagsterUI, _start, _stop
from pncp_assets_tests.support.seaweed import free_port


class ClusterStack(DagsterUI):
    def __init__(self, workdir: Path, env: dict[str, str], simulator_args: list[str]):
        self.workdir = workdir
        self.root = workdir / "cluster"
        sim_port = free_port()
        self.sim_url = f"http://127.0.0.1:{sim_port}"
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.prometheus_url = f"http://127.0.0.1:{free_port()}"
        self.pushgateway_url = f"http://127.0.0.1:{free_port()}"
        self.env = {**os.environ, **env, "PNCP_API_BASE_URL": self.sim_url, "PNCP_CLUSTER_DIR": str(self.root),
                    "PNCP_CLUSTER_PORT": str(port), "PNCP_CLUSTER_REDIS_PORT": str(free_port()),
                    "PNCP_CLUSTER_PUSHGATEWAY_PORT": self.pushgateway_url.rsplit(":", 1)[1],
                    "PNCP_CLUSTER_PROMETHEUS_PORT": self.prometheus_url.rsplit(":", 1)[1]}
        self.env.pop("PNCP_PUSHGATEWAY_URL", None)  # the cluster's own gateway
        self.simulator_args = simulator_args

    def __enter__(self) -> ClusterStack:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.simulator = _start([sys.executable, "-m", "pncp_assets.pncp.simulator", "--port",
                                 self.sim_url.rsplit(":", 1)[1], *self.simulator_args], self.env,
                                self.workdir / "simulator.log")
        up = self.cluster("up", timeout_s=900)
        if up.returncode != 0:
            self.__exit__()
            raise AssertionError(f"cluster up failed:\n{up.stdout[-3000:]}{up.stderr[-3000:]}\n{self.tail()}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.cluster("down", timeout_s=120)
        _stop(self.simulator)

    def cluster(self, action: str, timeout_s: float) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", str(REPO / "scripts" / "cluster.sh"), action], env=self.env,
                              capture_output=True, text=True, timeout=timeout_s)

    @property
    def pids(self) -> dict[str, int]:
        return json.loads((self.root / "pids.json").read_text())

    def log(self, name: str) -> str:
        path = self.root / "logs" / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def tail(self, chars: int = 2000) -> str:
        names = sorted(p.stem for p in (self.root / "logs").glob("*.log")) if (self.root / "logs").exists() else []
        return "\n".join(f"--- {n}\n{self.log(n)[-chars:]}" for n in names)
