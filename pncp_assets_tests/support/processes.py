"""Materialisations in processes of their own, as separate Dagster runs on separate machines would be.

`python -m pncp_assets_tests.support.processes PARTITION --api URL --bucket B --endpoint URL [--layer SOURCE ...]`
materialises one hour of layers (the first-seen contratações by default) on S3 (credentials from the
environment) with a fresh ephemeral instance: no pool, nothing shared with other processes but the bucket and
the API. Exit code 0 when the run succeeded, 1 when it failed; a crash point (`PNCP_FAULT_POINT`) ends it with
SIGKILL instead.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from typing import Any

import dagster as dg

from pncp_assets.defs.assets import LAYER_GRAPHS
from pncp_assets.defs.s3_storage import S3BronzeStorage
from pncp_assets_tests.support.pipeline import metadata, resources


def materialize_hour(partition: str, api: str, bucket: str, endpoint: str,
                     layers: tuple[str, ...] = ("pncp",)) -> tuple[bool, int]:
    """(success, compare-and-swap attempts the first layer's commit took)."""
    graphs = [g for g in LAYER_GRAPHS if g.layer.source in layers]
    storage = S3BronzeStorage(bucket=bucket, endpoint_url=endpoint)
    result = dg.materialize([a for g in graphs for a in g.assets], partition_key=partition,
                            resources=resources(api, storage), instance=dg.DagsterInstance.ephemeral(),
                            raise_on_error=False)
    return result.success, int(metadata(result, graphs[0].deltas.key.path[-1]).get("commit_attempts", 0))


def run_hour(partition: str, api: str, bucket: str, endpoint: str, env: dict[str, str] | None = None,
             timeout: float = 120, layers: tuple[str, ...] = ("pncp",)) -> subprocess.CompletedProcess[str]:
    """Run `materialize_hour` in a new Python process and wait for it."""
    cmd = [sys.executable, "-m", "pncp_assets_tests.support.processes", partition, "--api", api, "--bucket", bucket,
           "--endpoint", endpoint, "--layer", *layers]
    return subprocess.run(cmd, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout)


def worker(barrier: Any, tasks: list[str], api: str, bucket: str, endpoint: str, results: Any,
           layers: tuple[str, ...] = ("pncp",)) -> None:
    """For multiprocessing: materialise each task's partition after all workers reach the barrier."""
    for round_no, partition in enumerate(tasks):
        barrier.wait(timeout=300)
        try:
            ok, attempts = materialize_hour(partition, api, bucket, endpoint, layers)
        except Exception as exc:  # reported to the test, which fails on it
            ok, attempts = False, 0
            print(f"{partition}: {type(exc).__name__}: {exc}", file=sys.stderr)
        results.put((round_no, partition, ok, attempts))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("partition")
    parser.add_argument("--api", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--layer", nargs="+", default=["pncp"])
    args = parser.parse_args(argv)
    return 0 if materialize_hour(args.partition, args.api, args.bucket, args.endpoint, tuple(args.layer))[0] else 1


if __name__ == "__main__":
    sys.exit(main())
