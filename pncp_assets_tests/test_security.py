"""Secrets never leak: a failing materialisation with a known fake secret, searched for everywhere."""

from __future__ import annotations

import datetime as dt
import logging

from pncp_assets.defs.s3_storage import S3BronzeStorage
from pncp_assets.pncp.simulator import RunningSimulator, SimulatorConfig
from pncp_assets_tests.support.pipeline import Pipeline

FAKE_SECRET = "FakeSecret/do-not-leak+0123456789abcdefABCDEF"


def test_a_failing_run_never_shows_the_secret(seaweed, s3_bucket, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)  # every Python log line too, botocore's debug output included
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", seaweed.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET)  # wrong: every S3 call fails
    storage = S3BronzeStorage(bucket=s3_bucket, endpoint_url=seaweed.endpoint)
    with RunningSimulator(SimulatorConfig(seed=1, volume=100)) as sim:
        pipeline = Pipeline(sim, None, storage)  # type: ignore[arg-type]
        result = pipeline.run("2025-10-22-10:00", now=dt.datetime(2025, 10, 22, 11, 5), raise_on_error=False)
    assert not result.success
    texts: list[str] = []
    for entry in pipeline.instance.all_logs(result.run_id):
        texts.append(entry.user_message or "")
        texts.append(repr(entry))
        event = entry.dagster_event
        if event is not None and event.event_specific_data is not None:
            texts.append(repr(event.event_specific_data))
    failures = [e for e in result.all_events if e.is_step_failure]
    assert failures, "the run failed in a step"
    message = failures[0].step_failure_data.error.to_string()
    assert seaweed.endpoint in message and s3_bucket in message  # a clear error: where, not what key
    texts.append(message)
    texts.append(caplog.text)
    blob = "\n".join(texts)
    assert FAKE_SECRET not in blob
    assert FAKE_SECRET[:20] not in blob


def test_resources_hold_no_credentials():
    """dagster-aws' configuration has credential fields; BronzeStorage refuses any value in them (config
    is stored with every run and shown in the UI), so boto3's own chain is the only source."""
    import pytest

    credential_fields = {f for f in S3BronzeStorage.model_fields if "secret" in f or "key" in f.lower() or "token" in f}
    assert credential_fields == {"aws_access_key_id", "aws_secret_access_key", "aws_session_token"}
    for name in credential_fields:
        with pytest.raises(Exception, match="credentials are not taken from config") as refused:
            S3BronzeStorage(**{name: "AKIAFAKEFAKEFAKE1234"})
        assert "AKIAFAKEFAKEFAKE1234" not in str(refused.value)
