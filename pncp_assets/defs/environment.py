"""The one place that reads the environment.

Each variable fills one field of a resource (`resources.py`, where every default is written once) or
one setting of the code location (`PipelineSettings`); an unset or empty variable leaves the default.
A bad value raises `ConfigError` naming the variable and what it accepts. Credentials are not read here:
boto3 reads them itself, so they never pass through Dagster config.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import dagster as dg
from pydantic import ValidationError

from pncp_assets.config import ConfigError, parse_flag
from pncp_assets.defs.resources import AlertWebhook, BronzeStorage, MetricsGateway, PncpApi, Retention

# variable -> (resource field, parser)
STORAGE_VARIABLES: dict[str, tuple[str, Callable[[str], Any]]] = {
    "STORAGE_TYPE": ("storage_type", str.lower),
    "PNCP_DATA_DIR": ("data_dir", str),
    "BRONZE_BUCKET": ("bucket", str),
    "S3_ENDPOINT_URL": ("endpoint_url", str),
    "AWS_REGION": ("region_name", str),
    "AWS_PROFILE": ("profile_name", str),
    "S3_MAX_ATTEMPTS": ("max_attempts", int),
    "BRONZE_COMPRESSION": ("compression", str.lower),
}
API_VARIABLES: dict[str, tuple[str, Callable[[str], Any]]] = {
    "PNCP_API_BASE_URL": ("base_url", lambda v: v.rstrip("/")),
    "PNCP_REQUEST_INTERVAL_S": ("request_interval_s", float),
    "PNCP_MODALIDADES": ("modalidades", str),
    "PNCP_STEP_RETRIES": ("step_retries", int),
    "PNCP_STEP_RETRY_DELAY_S": ("step_retry_delay_s", float),
    "PNCP_SWEEP_MAX_AGE_MINUTES": ("sweep_max_age_minutes", float),
    "PNCP_COUNT_FIRST": ("count_first", parse_flag),
    "PNCP_MAX_IN_FLIGHT": ("max_in_flight", int),
    "PNCP_START_IN_FLIGHT": ("start_in_flight", int),
    "PNCP_OUTAGE_BOUND_MINUTES": ("outage_bound_minutes", float),
}

RETENTION_VARIABLES: dict[str, tuple[str, Callable[[str], Any]]] = {
    "PNCP_STATE_RETENTION_DAYS": ("state_days", int),
    "PNCP_RAW_RETENTION_DAYS": ("raw_days", int),
    "PNCP_REJECTED_RETENTION_DAYS": ("rejected_days", int),
    "PNCP_METRICS_RETENTION_DAYS": ("metrics_days", int),
}


def _fields(variables: Mapping[str, tuple[str, Callable[[str], Any]]], env: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, (field, parse) in variables.items():
        raw = (env.get(name) or "").strip()
        if not raw:
            continue
        try:
            values[field] = parse(raw)
        except ValueError:
            kind = {int: "int", float: "float", parse_flag: "flag (true or false)"}.get(parse, "value")
            raise ConfigError(f"{name}={raw!r} is not a valid {kind}") from None
    return values


def _build(cls: type, variables: Mapping[str, tuple[str, Callable[[str], Any]]], env: Mapping[str, str]) -> Any:
    values = _fields(variables, env)
    try:
        return cls(**values)
    except (ValidationError, ValueError) as exc:
        by_field = {field: name for name, (field, _) in variables.items()}
        errors = exc.errors() if isinstance(exc, ValidationError) else []
        field = str(errors[0]["loc"][0]) if errors and errors[0].get("loc") else ""
        message = errors[0]["msg"].removeprefix("Value error, ") if errors else str(exc)
        if not field:  # a rule between fields: its message names the variables
            raise ConfigError(message) from None
        name = by_field.get(field, field)
        raise ConfigError(f"{name}={values.get(field)!r}: {message}") from None


def bronze_storage(env: Mapping[str, str] | None = None) -> BronzeStorage:
    """`BronzeStorage` from STORAGE_TYPE, PNCP_DATA_DIR, BRONZE_BUCKET, S3_ENDPOINT_URL, AWS_REGION,
    AWS_PROFILE, S3_MAX_ATTEMPTS and BRONZE_COMPRESSION: for `s3` and `minio`, `S3BronzeStorage` (dagster-aws'
    settings), imported only then."""
    env = os.environ if env is None else env
    storage_type = (env.get("STORAGE_TYPE") or "").strip().lower()
    if storage_type in ("s3", "minio"):
        from pncp_assets.defs.s3_storage import S3BronzeStorage

        return _build(S3BronzeStorage, STORAGE_VARIABLES, env)
    s3_only = {"S3_ENDPOINT_URL", "AWS_REGION", "AWS_PROFILE", "S3_MAX_ATTEMPTS"}
    return _build(BronzeStorage, {k: v for k, v in STORAGE_VARIABLES.items() if k not in s3_only}, env)


def pncp_api(env: Mapping[str, str] | None = None) -> PncpApi:
    """`PncpApi` from PNCP_API_BASE_URL, PNCP_REQUEST_INTERVAL_S, PNCP_MODALIDADES, PNCP_STEP_RETRIES and
    PNCP_STEP_RETRY_DELAY_S, PNCP_SWEEP_MAX_AGE_MINUTES, PNCP_COUNT_FIRST, PNCP_MAX_IN_FLIGHT and
    PNCP_START_IN_FLIGHT, and PNCP_OUTAGE_BOUND_MINUTES."""
    return _build(PncpApi, API_VARIABLES, os.environ if env is None else env)


def retention(env: Mapping[str, str] | None = None) -> Retention:
    """`Retention` from PNCP_STATE_RETENTION_DAYS, PNCP_RAW_RETENTION_DAYS, PNCP_REJECTED_RETENTION_DAYS and
    PNCP_METRICS_RETENTION_DAYS; a policy that would archive states the links check still reads is refused here."""
    built = _build(Retention, RETENTION_VARIABLES, os.environ if env is None else env)
    try:
        built.policy()
    except ValueError as exc:
        raise ConfigError(f"{' / '.join(RETENTION_VARIABLES)}: {exc}") from None
    return built


ALERT_WEBHOOK_VARIABLE = "PNCP_ALERT_WEBHOOK_URL"
PUSHGATEWAY_VARIABLE = "PNCP_PUSHGATEWAY_URL"


def _secret_url(variable: str, env: Mapping[str, str], holds: str) -> bool:
    """Whether `variable` is set to a URL (unset or empty: no). The value is checked here but never repeated, in
    an error or anywhere: such a URL `holds` a secret. The resource reads it as a `dg.EnvVar`."""
    raw = (env.get(variable) or "").strip()
    if raw and not re.match(r"^https?://[^/\s]+", raw):
        raise ConfigError(f"{variable} is not an http(s) URL (its value is not shown: it may hold {holds})")
    return bool(raw)


def alert_webhook(env: Mapping[str, str] | None = None) -> AlertWebhook:
    """`AlertWebhook` bound to PNCP_ALERT_WEBHOOK_URL (alerts off when it is unset or empty)."""
    if _secret_url(ALERT_WEBHOOK_VARIABLE, os.environ if env is None else env, "a token"):
        return AlertWebhook(url=dg.EnvVar(ALERT_WEBHOOK_VARIABLE))
    return AlertWebhook()


def metrics_gateway(env: Mapping[str, str] | None = None) -> MetricsGateway:
    """`MetricsGateway` bound to PNCP_PUSHGATEWAY_URL (no metrics when it is unset or empty)."""
    if _secret_url(PUSHGATEWAY_VARIABLE, os.environ if env is None else env, "credentials"):
        return MetricsGateway(url=dg.EnvVar(PUSHGATEWAY_VARIABLE))
    return MetricsGateway()


@dataclass(frozen=True)
class PipelineSettings:
    """What shapes the code location itself (read once, when it loads)."""

    start_date: str = "2025-01-01-00:00"  # the first hourly partition
    day_close_hour: int = 6  # Brasília hour at which yesterday is swept a last time
    arrow_memory_pool: str = ""  # ARROW_DEFAULT_MEMORY_POOL, pyarrow's own: when set, its choice stands

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PipelineSettings:
        env = os.environ if env is None else env
        start = (env.get("PNCP_START_DATE") or "").strip() or cls.start_date
        if len(start) == 10:
            start = f"{start}-00:00"
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}-\d{2}:00", start):
            raise ConfigError(f"PNCP_START_DATE={start!r} is not a day (YYYY-MM-DD) or an hour (YYYY-MM-DD-HH:00)")
        raw_hour = (env.get("PNCP_DAY_CLOSE_HOUR") or "").strip() or str(cls.day_close_hour)
        if not raw_hour.isdigit() or not 0 <= int(raw_hour) <= 23:
            raise ConfigError(f"PNCP_DAY_CLOSE_HOUR={raw_hour!r} is not an hour (0-23)")
        return cls(start_date=start, day_close_hour=int(raw_hour),
                   arrow_memory_pool=(env.get("ARROW_DEFAULT_MEMORY_POOL") or "").strip())


SETTINGS = PipelineSettings.from_env()
