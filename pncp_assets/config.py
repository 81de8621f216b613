"""Settings read from the environment, each with a default that works offline on local storage."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

STORAGE_TYPES = ("local", "s3", "minio")
DEFAULT_MODALIDADES = tuple(range(1, 20))


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the variable and the accepted values."""


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return default if value is None or value.strip() == "" else value.strip()


def parse_modalidades(text: str) -> tuple[int, ...]:
    """`"1..19"`, `"6,8,9"` or a mix such as `"1..3,6"` -> sorted, unique codes."""
    codes: set[int] = set()
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            if ".." in part:
                lo, hi = (int(x) for x in part.split("..", 1))
                if lo > hi:
                    raise ValueError
                codes.update(range(lo, hi + 1))
            else:
                codes.add(int(part))
        except ValueError:
            raise ConfigError(
                f"PNCP_MODALIDADES: {part!r} is not a modalidade code or a range like 1..19"
            ) from None
    if not codes or min(codes) < 1:
        raise ConfigError("PNCP_MODALIDADES must name at least one modalidade code >= 1")
    return tuple(sorted(codes))


def _positive_int(name: str, default: str) -> int:
    raw = _env(name, default)
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None
    if value < 1:
        raise ConfigError(f"{name} must be >= 1")
    return value


@dataclass(frozen=True)
class StorageSettings:
    storage_type: str = "local"
    data_dir: str = "./data"
    bucket: str = "bronze"
    endpoint_url: str | None = None
    region: str | None = None
    s3_max_attempts: int = 5  # per S3 request, with botocore's standard backoff (SlowDown, 5xx, resets)
    # Credentials are read by boto3 itself from the environment; they are never held here,
    # so they cannot leak through a repr, a log line or metadata.

    @classmethod
    def from_env(cls) -> StorageSettings:
        storage_type = _env("STORAGE_TYPE", "local").lower()
        if storage_type not in STORAGE_TYPES:
            raise ConfigError(
                f"STORAGE_TYPE={storage_type!r} is not valid; use one of: {', '.join(STORAGE_TYPES)}"
            )
        return cls(
            storage_type=storage_type,
            data_dir=_env("PNCP_DATA_DIR", "./data"),
            bucket=_env("BRONZE_BUCKET", "bronze"),
            endpoint_url=os.environ.get("S3_ENDPOINT_URL") or None,
            region=os.environ.get("AWS_REGION") or None,
            s3_max_attempts=_positive_int("S3_MAX_ATTEMPTS", "5"),
        )


@dataclass(frozen=True)
class PncpSettings:
    base_url: str = "https://pncp.gov.br/api/consulta"
    request_interval_s: float = 2.0
    modalidades: tuple[int, ...] = field(default=DEFAULT_MODALIDADES)

    @classmethod
    def from_env(cls) -> PncpSettings:
        raw_interval = _env("PNCP_REQUEST_INTERVAL_S", "2.0")
        try:
            interval = float(raw_interval)
        except ValueError:
            raise ConfigError(f"PNCP_REQUEST_INTERVAL_S={raw_interval!r} is not a number") from None
        if interval < 0:
            raise ConfigError("PNCP_REQUEST_INTERVAL_S must be >= 0")
        return cls(
            base_url=_env("PNCP_API_BASE_URL", "https://pncp.gov.br/api/consulta").rstrip("/"),
            request_interval_s=interval,
            modalidades=parse_modalidades(_env("PNCP_MODALIDADES", "1..19")),
        )


def day_close_hour() -> int:
    """`PNCP_DAY_CLOSE_HOUR` (0-23, Brasília time, default 6): when day D is swept a last time on D+1."""
    raw = _env("PNCP_DAY_CLOSE_HOUR", "6")
    try:
        hour = int(raw)
    except ValueError:
        raise ConfigError(f"PNCP_DAY_CLOSE_HOUR={raw!r} is not an hour (0-23)") from None
    if not 0 <= hour <= 23:
        raise ConfigError(f"PNCP_DAY_CLOSE_HOUR={raw!r} is not an hour (0-23)")
    return hour
