"""A local folder as the image store."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

from skinctl.errors import StorageError
from skinctl.storage.base import KeyedByUrl


def _path_from_url(url: str) -> Path:
    if url.startswith("file://"):
        return Path(unquote(urlparse(url).path))
    return Path(url).expanduser()


class LocalStorage(KeyedByUrl):
    """Objects are files under `root`; writes go to a temporary file and are renamed into place,
    so a crash never leaves a half-written object under its final name."""

    def __init__(self, url: str) -> None:
        self.root = _path_from_url(url).resolve()
        self.base_url = self.root.as_uri()
        self._made_dirs: set[Path] = (
            set()
        )  # folders known to exist: one mkdir each, not one per put

    def _path(self, key: str) -> Path:
        if key.startswith("/") or ".." in Path(key).parts:
            raise StorageError(f"Refusing storage key {key!r}: it leaves the store.")
        return self.root / key

    def put(self, key: str, data: bytes, *, md5_hex: str | None = None) -> bool:
        path = self._path(key)
        try:
            if path.stat().st_size == len(data):
                return False
        except FileNotFoundError:
            pass
        if path.parent not in self._made_dirs:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._made_dirs.add(path.parent)
        try:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
        except FileNotFoundError:  # the folder was removed behind our back
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return True

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise StorageError(f"Stored object {self.url_for(key)} is missing.") from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def iter_keys(self) -> Iterator[str]:
        if not self.root.exists():
            return
        for path in self.root.rglob("*"):
            if path.is_file() and not path.name.startswith(".tmp-"):
                yield path.relative_to(self.root).as_posix()
