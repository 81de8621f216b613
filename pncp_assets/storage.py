"""ObjectStore: the only code that touches storage, with a local-filesystem and an S3 backend.

Both backends give the same guarantees: a put is atomic (readers see the old or the new object, never
a part), `put(..., if_absent=True)` and `put(..., if_version=tag)` are compare-and-swap with exactly one
winner, and a missing key raises `NotFound`.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import logging
import os
import re
import tempfile
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

log = logging.getLogger(__name__)

_KEY_PART = re.compile(r"^[A-Za-z0-9=_.:+\-]+$")


class StorageError(RuntimeError):
    """A storage operation failed; the message names the backend location, never a credential."""


class NotFound(StorageError, KeyError):
    """The key does not exist."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else "not found"


class VersionConflict(StorageError):
    """A conditional put lost: the object exists (if_absent) or has another version (if_version)."""


class InvalidKey(StorageError, ValueError):
    """A key that could escape the layout (absolute, `..`, NUL, backslash, empty part)."""


def validate_key(key: str) -> str:
    """Refuse any key that is not a plain relative path of safe parts."""
    if not isinstance(key, str) or not key:
        raise InvalidKey(f"invalid storage key {key!r}: empty")
    parts = key.split("/")
    for part in parts:
        if part in ("", ".", "..") or not _KEY_PART.match(part):
            raise InvalidKey(f"invalid storage key {key!r}: part {part!r} is not allowed")
    return key


def validate_prefix(prefix: str) -> str:
    if prefix == "":
        return prefix
    validate_key(prefix.rstrip("/"))
    return prefix


@dataclass(frozen=True)
class StoredObject:
    data: bytes
    version: str


class ObjectStore(ABC):
    """Get, put (optionally if-absent or if-version), list and delete bytes by key."""

    @abstractmethod
    def get(self, key: str) -> StoredObject:
        """The object's bytes and version tag; `NotFound` if it does not exist."""

    @abstractmethod
    def version(self, key: str) -> str | None:
        """The current version tag, or None if the key does not exist."""

    @abstractmethod
    def put(self, key: str, data: bytes, *, if_absent: bool = False, if_version: str | None = None) -> str:
        """Store `data` atomically and return the new version tag.

        `if_absent`: only if the key does not exist. `if_version`: only if the current version is that
        tag. A lost condition raises `VersionConflict`.
        """

    @abstractmethod
    def list(self, prefix: str = "") -> list[str]:
        """All keys starting with `prefix`, sorted."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the key; deleting a missing key is not an error."""

    @abstractmethod
    def describe(self) -> str:
        """Where the objects live, for messages (never includes a credential)."""

    def exists(self, key: str) -> bool:
        return self.version(key) is not None

    def sizes(self, prefix: str = "") -> dict[str, int]:
        """Every key starting with `prefix`, with its size in bytes (for retention and its report)."""
        return {key: len(self.get(key).data) for key in self.list(prefix)}

    def get_json(self, key: str) -> Any:
        return json.loads(self.get(key).data)

    def put_json(self, key: str, obj: Any, **conditions: Any) -> str:
        body = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return self.put(key, body, **conditions)


def _content_version(data: bytes) -> str:
    # A content hash: equal bytes, equal tag (like an S3 ETag). SHA-256 runs in hardware on
    # current CPUs, several times faster than MD5 for a large state file.
    return hashlib.sha256(data).hexdigest()[:32]


class LocalObjectStore(ObjectStore):
    """Objects as files under `root`. Atomic via write-to-temp + fsync + rename; conditions via flock."""

    _thread_locks: ClassVar[dict[str, threading.Lock]] = {}
    _thread_locks_guard = threading.Lock()

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock_dir = self.root / ".locks"
        self._lock_dir.mkdir(exist_ok=True)

    def describe(self) -> str:
        return f"local storage at {self.root}"

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*validate_key(key).split("/"))

    @contextlib.contextmanager
    def _locked(self, key: str) -> Iterator[None]:
        # flock serialises processes; the thread lock is needed because flock locks belong to the
        # open file description, and threads of one process would otherwise share nothing.
        name = hashlib.sha1(key.encode()).hexdigest()
        with LocalObjectStore._thread_locks_guard:
            tlock = LocalObjectStore._thread_locks.setdefault(f"{self.root}:{name}", threading.Lock())
        with tlock, open(self._lock_dir / name, "a+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def get(self, key: str) -> StoredObject:
        path = self._path(key)
        try:
            data = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise NotFound(f"{key} not found in {self.describe()}") from None
        return StoredObject(data, _content_version(data))

    def version(self, key: str) -> str | None:
        try:
            return self.get(key).version
        except NotFound:
            return None

    def put(self, key: str, data: bytes, *, if_absent: bool = False, if_version: str | None = None) -> str:
        path = self._path(key)
        with self._locked(key):
            if if_absent or if_version is not None:
                current = self.version(key)
                if if_absent and current is not None:
                    raise VersionConflict(f"{key} already exists in {self.describe()}")
                if if_version is not None and current != if_version:
                    raise VersionConflict(f"{key} changed in {self.describe()} (expected version {if_version})")
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
        return _content_version(data)

    def list(self, prefix: str = "") -> list[str]:
        validate_prefix(prefix)
        # Walk only the deepest directory the prefix names, not the whole store.
        base_parts = prefix.split("/")[:-1]
        base = self.root.joinpath(*base_parts) if base_parts else self.root
        if not base.is_dir():
            return []
        keys = []
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel = Path(dirpath).relative_to(self.root).as_posix()
            for name in filenames:
                if name.startswith("."):  # temp files of puts in flight
                    continue
                key = name if rel == "." else f"{rel}/{name}"
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)

    def delete(self, key: str) -> None:
        path = self._path(key)
        with self._locked(key), contextlib.suppress(FileNotFoundError):
            path.unlink()

    def sizes(self, prefix: str = "") -> dict[str, int]:
        out = {}
        for key in self.list(prefix):
            with contextlib.suppress(FileNotFoundError):
                out[key] = self._path(key).stat().st_size
        return out


class S3ObjectStore(ObjectStore):
    """Objects in an S3 bucket. Conditions use `If-None-Match: *` / `If-Match: <ETag>`."""

    def __init__(self, client: Any, bucket: str):
        self.client = client
        self.bucket = bucket
        self.endpoint = getattr(getattr(client, "meta", None), "endpoint_url", None) or "AWS S3"

    def describe(self) -> str:
        return f"s3://{self.bucket} at {self.endpoint}"

    def _error(self, op: str, key: str, exc: Exception) -> StorageError:
        from botocore.exceptions import ClientError

        if isinstance(exc, ClientError):
            err = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            detail = f"{err.get('Code', 'error')} (HTTP {status}): {err.get('Message', '')}".strip()
        else:
            # botocore's own messages name the endpoint and never the secret key.
            detail = f"{type(exc).__name__}: {exc}"
        return StorageError(f"S3 {op} of {key!r} in {self.describe()} failed: {detail}")

    @staticmethod
    def _code(exc: Exception) -> tuple[str, int | None]:
        response = getattr(exc, "response", None) or {}
        return (
            str(response.get("Error", {}).get("Code", "")),
            response.get("ResponseMetadata", {}).get("HTTPStatusCode"),
        )

    def get(self, key: str) -> StoredObject:
        validate_key(key)
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
            data = response["Body"].read()
        except Exception as exc:
            code, status = self._code(exc)
            if code in ("NoSuchKey", "404", "NotFound") or (status == 404 and code != "NoSuchBucket"):
                raise NotFound(f"{key} not found in {self.describe()}") from None
            raise self._error("get", key, exc) from None
        return StoredObject(data, response["ETag"].strip('"'))

    def version(self, key: str) -> str | None:
        validate_key(key)
        try:
            response = self.client.head_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            code, status = self._code(exc)
            if code in ("NoSuchKey", "404", "NotFound") or (status == 404 and code != "NoSuchBucket"):
                return None
            raise self._error("head", key, exc) from None
        return response["ETag"].strip('"')

    def put(self, key: str, data: bytes, *, if_absent: bool = False, if_version: str | None = None) -> str:
        validate_key(key)
        kwargs: dict[str, Any] = {}
        if if_absent:
            kwargs["IfNoneMatch"] = "*"
        if if_version is not None:
            kwargs["IfMatch"] = f'"{if_version}"'
        try:
            response = self.client.put_object(Bucket=self.bucket, Key=key, Body=data, **kwargs)
        except Exception as exc:
            code, status = self._code(exc)
            if kwargs and (code in ("PreconditionFailed", "ConditionalRequestConflict") or status in (409, 412)):
                raise VersionConflict(f"{key}: conditional put lost in {self.describe()} ({code})") from None
            if if_version is not None and (code == "NoSuchKey" or status == 404):
                raise VersionConflict(f"{key}: no longer exists in {self.describe()}") from None
            raise self._error("put", key, exc) from None
        return response["ETag"].strip('"')

    def list(self, prefix: str = "") -> list[str]:
        return sorted(self.sizes(prefix))

    def sizes(self, prefix: str = "") -> dict[str, int]:
        validate_prefix(prefix)
        sizes: dict[str, int] = {}
        try:
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                sizes.update((obj["Key"], int(obj.get("Size", 0))) for obj in page.get("Contents", []))
        except Exception as exc:
            raise self._error("list", prefix, exc) from None
        return dict(sorted(sizes.items()))

    def delete(self, key: str) -> None:
        validate_key(key)
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            code, status = self._code(exc)
            if code in ("NoSuchKey", "404") or (status == 404 and code != "NoSuchBucket"):
                return
            raise self._error("delete", key, exc) from None


@functools.cache
def _model_loader() -> Any:
    """botocore's loader of service models, shared by every client this process builds (it caches what
    it parsed; it holds no credentials)."""
    import botocore.loaders

    return botocore.loaders.create_loader()


def s3_session(profile_name: str | None = None) -> Any:
    """A boto3 session of its own: boto3's default session caches the first credentials it resolves, so a
    rotated key in the environment would otherwise be ignored for the life of the process. Sessions share one
    model loader: parsing S3's service model made each client cost 0.1 s. Credentials come from boto3's own
    chain (the environment, a profile, an instance role)."""
    import boto3
    import botocore.session

    botocore_session = botocore.session.get_session()
    botocore_session.register_component("data_loader", _model_loader())
    return boto3.session.Session(botocore_session=botocore_session, profile_name=profile_name)
