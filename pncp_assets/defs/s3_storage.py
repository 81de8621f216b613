"""Bronze on S3: `BronzeStorage` with dagster-aws' S3 settings and client configuration.

Imported only where S3 is used (`environment.bronze_storage` when STORAGE_TYPE is `s3` or `minio`, or a
deployment that builds it): importing dagster-aws loads boto3 and Dagster's components, which a local run
never needs.
"""

from __future__ import annotations

from typing import Any

from dagster_aws.s3 import S3Resource
from pydantic import field_validator

from pncp_assets.defs.resources import BronzeStorage
from pncp_assets.storage import ObjectStore, S3ObjectStore, s3_session


class S3BronzeStorage(BronzeStorage, S3Resource):
    """Bronze in an S3 bucket. The S3 settings are dagster-aws' `S3Resource` fields (`region_name`,
    `endpoint_url`, `max_attempts`, `profile_name`, `use_ssl`, `verify`, ...), as Dagster users set them
    elsewhere, and its client is built as dagster-aws builds one, adding what dagster-aws does not expose:
    path-style addressing, timeouts and the connection pool (`BronzeStorage`'s fields). Credentials are read by
    boto3 from its own chain (the environment, a profile, an instance role), never from Dagster config."""

    storage_type: str = "s3"

    @field_validator("storage_type")
    @classmethod
    def _s3_type(cls, value: str) -> str:
        if value not in ("s3", "minio"):
            raise ValueError(f"storage_type {value!r} is not an S3 type; use s3 or minio")
        return value

    @field_validator("aws_access_key_id", "aws_secret_access_key", "aws_session_token")
    @classmethod
    def _no_credentials_in_config(cls, value: str | None) -> None:
        # Config is stored with every run and shown in the UI: credentials come from boto3's own chain.
        if value is not None:
            raise ValueError("credentials are not taken from config: set AWS_ACCESS_KEY_ID / "
                             "AWS_SECRET_ACCESS_KEY in the environment, a profile or an instance role")
        return None

    @field_validator("max_attempts")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError("max_attempts must be >= 1")
        return value

    def get_client(self) -> Any:
        """A boto3 S3 client as dagster-aws' `construct_s3_client` builds one (a session of its own, standard
        retries, an unsigned session on request), with this resource's addressing, timeouts and connection pool.
        `max_attempts` counts the first try, as dagster-aws' field description says (its `construct_s3_client`
        hands it to botocore as retries after the first)."""
        from botocore.config import Config

        path_style = self.path_style if self.path_style is not None else (
            self.storage_type == "minio" or self.endpoint_url is not None)
        config = Config(retries={"total_max_attempts": self.max_attempts, "mode": "standard"},
                        connect_timeout=self.connect_timeout_s, read_timeout=self.read_timeout_s,
                        max_pool_connections=self.max_pool_connections,
                        s3={"addressing_style": "path"} if path_style else None)
        client = s3_session(self.profile_name).client(
            "s3", endpoint_url=self.endpoint_url, region_name=self.region_name or "us-east-1", config=config,
            use_ssl=self.use_ssl, verify=self.verify)
        if self.use_unsigned_session:
            from botocore.handlers import disable_signing

            client.meta.events.register("choose-signer.s3.*", disable_signing)
        return client

    def get_object_to_set_on_execution_context(self) -> Any:
        return self  # the assets take the resource itself, as they do `BronzeStorage`

    def _build(self) -> ObjectStore:
        return S3ObjectStore(self.get_client(), self.bucket)

