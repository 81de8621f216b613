"""A real Prometheus scraping a real Pushgateway, both from the system's packages (`apt-get install prometheus
prometheus-pushgateway`), on loopback ports, each in its own folder; started only once both answer ready."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from pncp_assets_tests.support.seaweed import free_port

PROMETHEUS = "/usr/bin/prometheus"
PUSHGATEWAY = "/usr/bin/prometheus-pushgateway"
# As the cluster and the k8s values start it: without the consistency check, whose cost grows with the groups
# held (docs/OPERATIONS.md, "Metrics").
GATEWAY_FLAGS = ("--push.disable-consistency-check",)


def _get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except OSError:
        return 0, b""


def query(url: str, expr: str) -> list[dict[str, Any]]:
    """An instant query's result from the Prometheus at `url` (empty when it does not answer)."""
    status, body = _get(f"{url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}")
    if status != 200:
        return []
    return json.loads(body)["data"]["result"]


def wait_for(url: str, expr: str, count: int = 1, timeout_s: float = 30) -> list[dict[str, Any]]:
    """The query's result once it has at least `count` series (after the next scrapes)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = query(url, expr)
        if len(result) >= count:
            return result
        time.sleep(0.3)
    raise TimeoutError(f"{expr}: fewer than {count} series after {timeout_s:g} s ({query(url, expr)})")


def scraped(gateway: str, url: str, timeout_s: float = 60) -> None:
    """Until the Prometheus at `url` has scraped every push the Pushgateway at `gateway` holds now: its latest
    `push_time_seconds` is in Prometheus (one scrape reads every group at once, so the earlier pushes are too)."""
    status, body = _get(f"{gateway}/metrics")
    assert status == 200, f"the Pushgateway at {gateway} did not answer"
    times = [float(line.rsplit(" ", 1)[1]) for line in body.decode().splitlines()
             if line.startswith("push_time_seconds{")]
    latest = max(times, default=0.0)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        seen = query(url, "max(push_time_seconds)")
        if seen and float(seen[0]["value"][1]) >= latest:
            return
        time.sleep(0.3)
    raise TimeoutError(f"Prometheus has not scraped the push of {latest} after {timeout_s:g} s")


class PrometheusStack:
    def __init__(self, root: Path):
        self.root = root
        self.gateway_port, self.prometheus_port = free_port(), free_port()
        self.gateway = f"http://127.0.0.1:{self.gateway_port}"
        self.url = f"http://127.0.0.1:{self.prometheus_port}"
        self.processes: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> PrometheusStack:
        self.root.mkdir(parents=True, exist_ok=True)
        config = self.root / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: pushgateway\n    honor_labels: true\n"
            f"    static_configs:\n      - targets: ['127.0.0.1:{self.gateway_port}']\n")
        # Debian's build keeps the groups in /var/lib/prometheus/pushgateway.data by default: shared by every
        # gateway started on the machine. Each stack keeps its own. Started as deployed (GATEWAY_FLAGS).
        self._start([PUSHGATEWAY, f"--web.listen-address=127.0.0.1:{self.gateway_port}",
                     f"--persistence.file={self.root / 'pushgateway.data'}", *GATEWAY_FLAGS], "pushgateway")
        self._start([PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={self.root / 'tsdb'}",
                     f"--web.listen-address=127.0.0.1:{self.prometheus_port}"], "prometheus")
        try:
            self._ready(f"{self.gateway}/-/ready")
            self._ready(f"{self.url}/-/ready")
            self._scraping()
        except Exception:
            self.__exit__(None, None, None)
            raise
        return self

    def _start(self, cmd: list[str], name: str) -> None:
        log = open(self.root / f"{name}.log", "wb")
        self.processes.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=self.root))

    def _ready(self, url: str, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if _get(url)[0] == 200:
                return
            if any(p.poll() is not None for p in self.processes):
                raise RuntimeError(f"a server exited before it was ready: {self.tail()}")
            time.sleep(0.2)
        raise TimeoutError(f"{url} not ready in {timeout_s:g} s: {self.tail()}")

    def _scraping(self, timeout_s: float = 60) -> None:
        """Until Prometheus has scraped the Pushgateway once (its target is up)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if [r for r in self.query('up{job="pushgateway"}') if r["value"][1] == "1"]:
                return
            time.sleep(0.3)
        raise TimeoutError(f"Prometheus never scraped the Pushgateway: {self.tail()}")

    def query(self, expr: str) -> list[dict[str, Any]]:
        return query(self.url, expr)

    def wait_for(self, expr: str, count: int = 1, timeout_s: float = 30) -> list[dict[str, Any]]:
        return wait_for(self.url, expr, count, timeout_s)

    def scraped(self, timeout_s: float = 30) -> None:
        scraped(self.gateway, self.url, timeout_s)

    def tail(self) -> str:
        return "\n".join(f"{p.name}: {p.read_text(errors='replace')[-1500:]}" for p in self.root.glob("*.log"))

    def __exit__(self, *exc: object) -> None:
        for p in self.processes:
            p.terminate()
        for p in self.processes:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
