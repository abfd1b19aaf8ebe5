"""Google Cloud Storage as the image store: `gs://bucket[/prefix]`.

Credentials come from Google's standard chain (GOOGLE_APPLICATION_CREDENTIALS, gcloud's
application-default login, the metadata server). With `STORAGE_EMULATOR_HOST` set the client
talks to that emulator with anonymous credentials. google-cloud-storage is imported inside
methods: it costs ~0.5 s to import.

Objects are content-addressed, so `put` first asks for the object's metadata and skips the
upload when an object with the same MD5 (or CRC32C, for composite objects without one) is there.
Uploads send an MD5 the server checks, and are retried with exponential back-off on transient
errors. Each thread gets its own client (the client is not documented as thread-safe).
"""

from __future__ import annotations

import base64
import hashlib
import mimetypes
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from skinctl.errors import ConfigError, StorageError
from skinctl.storage.base import KeyedByUrl

T = TypeVar("T")

ATTEMPTS = 5
RETRY_BASE_DELAY = 0.2  # seconds, doubled per attempt


LIST_PAGE_SIZE = 1000  # objects per listing request (the API's maximum)


@dataclass(frozen=True)
class StoredObject:
    key: str  # relative to the store's prefix
    size: int  # bytes


_readers: dict[str, GCSStorage] = {}


def read_object(url: str) -> bytes:
    """The bytes of one object named by its gs:// URL (md5-checked, retried), with one client
    per bucket and process (ingest workers read a bucket source this way)."""
    bucket, name = parse_gs_url(url)
    store = _readers.get(bucket)
    if store is None:
        store = _readers[bucket] = GCSStorage(f"gs://{bucket}")
    return store.get(name)


def parse_gs_url(url: str) -> tuple[str, str]:
    """('bucket', 'prefix') from gs://bucket/prefix (prefix without slashes at its ends)."""
    if not url.startswith("gs://"):
        raise ConfigError(f"{url!r} is not a gs:// URL.")
    bucket, _, prefix = url[len("gs://") :].partition("/")
    if not bucket:
        raise ConfigError(
            f"{url!r} has no bucket name.", hint="Use gs://bucket or gs://bucket/prefix."
        )
    return bucket, prefix.strip("/")


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def crc32c_b64(data: bytes) -> str:
    import google_crc32c

    return _b64(google_crc32c.Checksum(data).digest())


def _transient(error: BaseException) -> bool:
    import requests
    from google.api_core import exceptions as api

    try:
        from google.resumable_media import DataCorruption, InvalidResponse
    except ImportError:  # pragma: no cover - resumable-media is a dependency of the client
        DataCorruption = InvalidResponse = ()  # noqa: N806
    if isinstance(
        error,
        api.TooManyRequests
        | api.InternalServerError
        | api.BadGateway
        | api.ServiceUnavailable
        | api.GatewayTimeout
        | api.RequestRangeNotSatisfiable,
    ):
        return True
    if isinstance(
        error, requests.ConnectionError | requests.Timeout | ConnectionError | TimeoutError
    ):
        return True
    if DataCorruption and isinstance(error, DataCorruption):
        return True  # the bytes arrived damaged: send them again
    if InvalidResponse and isinstance(error, InvalidResponse):
        status = getattr(getattr(error, "response", None), "status_code", 0) or 0
        return status >= 500 or status == 429
    return False


class GCSStorage(KeyedByUrl):
    """A bucket (and optional prefix) as a flat key -> bytes store."""

    def __init__(self, url: str, *, project: str | None = None) -> None:
        self.bucket_name, self.prefix = parse_gs_url(url)
        self.base_url = f"gs://{self.bucket_name}" + (f"/{self.prefix}" if self.prefix else "")
        self.project = project or os.environ.get("GOOGLE_CLOUD_PROJECT")
        self._local = threading.local()

    # --- client -------------------------------------------------------------------------------

    def _client(self) -> Any:
        client = getattr(self._local, "client", None)
        if client is None:
            from google.auth.exceptions import DefaultCredentialsError
            from google.cloud import storage

            try:
                if os.environ.get("STORAGE_EMULATOR_HOST"):
                    from google.auth.credentials import AnonymousCredentials

                    client = storage.Client(
                        project=self.project or "skinctl-emulator",
                        credentials=AnonymousCredentials(),
                    )
                else:
                    client = storage.Client(project=self.project)
            except DefaultCredentialsError as error:
                reason = str(error).splitlines()[0][:200]
                raise StorageError(
                    f"No usable Google Cloud credentials for {self.base_url}: {reason}",
                    hint="Set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, or run "
                    "`gcloud auth application-default login`.",
                ) from None
            self._local.client = client
        return client

    def _bucket(self) -> Any:
        bucket = getattr(self._local, "bucket", None)
        if bucket is None:
            bucket = self._client().bucket(self.bucket_name)
            self._local.bucket = bucket
        return bucket

    def _name(self, key: str) -> str:
        if key.startswith("/") or ".." in key.split("/"):
            raise StorageError(f"Refusing storage key {key!r}: it leaves the store.")
        return f"{self.prefix}/{key}" if self.prefix else key

    def _call(self, what: str, key: str, call: Callable[[], T]) -> T:
        """Run a GCS call with retries on transient errors; turn the rest into StorageError."""
        from google.api_core import exceptions as api
        from google.auth.exceptions import DefaultCredentialsError, RefreshError

        for attempt in range(ATTEMPTS):
            try:
                return call()
            except StorageError:
                raise
            except (
                api.Unauthorized,
                api.Forbidden,
                RefreshError,
                DefaultCredentialsError,
            ) as error:
                raise StorageError(
                    f"Google Cloud Storage refused to {what} {self.url_for(key)} ({type(error).__name__}).",
                    hint="Check that the credentials in use may read and write the bucket "
                    "(roles/storage.objectAdmin).",
                ) from None
            except api.NotFound:
                # Missing objects are handled inside the calls; a 404 reaching here is the bucket.
                raise StorageError(
                    f"Bucket {self.bucket_name!r} does not exist (while trying to {what} {self.url_for(key)}).",
                    hint="Create it (gcloud storage buckets create gs://NAME), or fix the storage URL.",
                ) from None
            except Exception as error:
                if not _transient(error) or attempt == ATTEMPTS - 1:
                    raise StorageError(
                        f"Could not {what} {self.url_for(key)}: {str(error).splitlines()[0][:200]}."
                    ) from error
                time.sleep(RETRY_BASE_DELAY * 2**attempt)
        raise AssertionError("unreachable")

    # --- the Storage protocol -----------------------------------------------------------------

    def put(self, key: str, data: bytes, *, md5_hex: str | None = None) -> bool:
        name = self._name(key)
        md5_b64 = _b64(bytes.fromhex(md5_hex)) if md5_hex else _b64(hashlib.md5(data).digest())

        def upload() -> bool:
            bucket = self._bucket()
            existing = bucket.get_blob(name)
            if existing is not None:
                if existing.md5_hash == md5_b64:
                    return False
                if existing.md5_hash is None and existing.crc32c == crc32c_b64(data):
                    return False
            blob = bucket.blob(name)
            blob.md5_hash = md5_b64  # the server rejects the upload if the bytes do not match
            content_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
            # Only replace what we looked at: generation 0 means "must not exist yet".
            blob.upload_from_string(
                data,
                content_type=content_type,
                if_generation_match=existing.generation if existing is not None else 0,
                checksum="md5",
            )
            return True

        return self._call("upload", key, upload)

    def get(self, key: str) -> bytes:
        from google.api_core import exceptions as api

        name = self._name(key)

        def download() -> bytes:
            try:
                return self._bucket().blob(name).download_as_bytes(checksum="md5")
            except api.NotFound:
                raise StorageError(f"Stored object {self.url_for(key)} is missing.") from None

        return self._call("download", key, download)

    def exists(self, key: str) -> bool:
        name = self._name(key)
        return self._call("look up", key, lambda: self._bucket().blob(name).exists())

    def delete(self, key: str) -> None:
        from google.api_core import exceptions as api

        name = self._name(key)

        def remove() -> None:
            try:
                self._bucket().blob(name).delete()
            except api.NotFound:
                pass

        self._call("delete", key, remove)

    def iter_keys(self) -> Iterator[str]:
        start = f"{self.prefix}/" if self.prefix else ""

        def listing() -> list[str]:
            client = self._client()
            return [blob.name for blob in client.list_blobs(self.bucket_name, prefix=start or None)]

        for name in self._call("list", "", listing):
            if not name.endswith("/"):
                yield name[len(start) :]

    def list_objects(self, page_size: int | None = None) -> Iterator[StoredObject]:
        """Every object under the prefix (key relative to it, size), read one page at a time so
        a listing of millions never sits in memory; each page is retried like any other call."""
        start = f"{self.prefix}/" if self.prefix else ""
        pages = iter(
            self._client()
            .list_blobs(
                self.bucket_name, prefix=start or None, page_size=page_size or LIST_PAGE_SIZE
            )
            .pages
        )
        while True:
            page = self._call("list", "", lambda: [(b.name, b.size) for b in next(pages, [])])
            if not page:
                return
            for name, size in page:
                if not name.endswith("/"):
                    yield StoredObject(name[len(start) :], int(size or 0))

    def ensure_bucket(self) -> None:
        """Create the bucket when it does not exist (used by tests and first-time setup)."""
        from google.api_core import exceptions as api

        def create() -> None:
            client = self._client()
            try:
                client.get_bucket(self.bucket_name)
            except api.NotFound:
                client.create_bucket(self.bucket_name)

        self._call("create bucket for", "", create)
