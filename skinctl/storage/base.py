"""The storage protocol and the factory that picks a backend from a URL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from skinctl.errors import ConfigError


def content_key(sha256_hex: str, ext: str) -> str:
    """The content-addressed key of an object: `ab/abcdef....jpg`."""
    ext = ext.lower().lstrip(".")
    return f"{sha256_hex[:2]}/{sha256_hex}.{ext}" if ext else f"{sha256_hex[:2]}/{sha256_hex}"


@runtime_checkable
class Storage(Protocol):
    """A flat key -> bytes store addressed by URLs (`file://...`, `gs://bucket/prefix/...`)."""

    base_url: str

    def url_for(self, key: str) -> str:
        """The URL an object with this key has (whether or not it exists)."""
        ...

    def key_for(self, url: str) -> str:
        """The key inside this store of a URL that `url_for` produced; ValueError if foreign."""
        ...

    def put(self, key: str, data: bytes, *, md5_hex: str | None = None) -> bool:
        """Store `data` under `key` atomically; return False if an identical object was there."""
        ...

    def get(self, key: str) -> bytes:
        """The object's bytes; StorageError if it is missing."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...

    def iter_keys(self) -> Iterator[str]:
        """Every key in the store, in no particular order."""
        ...


class KeyedByUrl:
    """`url_for`/`key_for` for a backend whose URLs are `<base_url>/<key>` (both backends)."""

    base_url: str

    def url_for(self, key: str) -> str:
        return f"{self.base_url}/{key}"

    def key_for(self, url: str) -> str:
        prefix = self.base_url + "/"
        if not url.startswith(prefix):
            raise ValueError(f"{url} is not in {self.base_url}")
        return url[len(prefix) :]


def open_storage(url: str) -> Storage:
    """The backend for a storage URL: a `file://` URL or plain path, or `gs://bucket[/prefix]`."""
    if url.startswith("gs://"):
        from skinctl.storage.gcs import GCSStorage  # imported only when used: google-cloud is heavy

        return GCSStorage(url)
    if url.startswith("file://") or "://" not in url:
        from skinctl.storage.local import LocalStorage

        return LocalStorage(url)
    raise ConfigError(
        f"Unsupported storage URL scheme in {url!r}.",
        hint="Use a folder path, file:///path, or gs://bucket/prefix.",
    )
