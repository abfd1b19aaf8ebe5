"""The per-file work of an image ingest, run in worker processes (the local pool or Ray: see
`skinctl.engines`).

Each worker reads a file once, runs `imageproc.analyse_bytes` (the ONE decode path) and, unless
it is a dry run, stores the bytes content-addressed (`<sha[:2]>/<sha>.<ext>`) BEFORE the parent
commits the rows: a crash leaves at most objects that the rerun references again (a re-put of
the same content is a no-op), never a row pointing at nothing. Uploads (GCS included) therefore
run in these processes, one at a time per worker.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from skinctl.ingest.imageproc import DEFAULT_MAX_PIXELS, ImageFacts, ImageRejected, analyse_bytes

if TYPE_CHECKING:
    from skinctl.engines.base import ComputeEngine

MAX_FILE_BYTES = 512 * 1024 * 1024  # larger files are refused before being read into memory


@dataclass
class Outcome:
    """What a worker found for one file."""

    index: int
    facts: ImageFacts | None = None
    image_url: str | None = None
    stored_new: bool = False
    reason: str | None = None
    detail: str | None = None


_worker_storage = None
_worker_max_pixels = DEFAULT_MAX_PIXELS


def _init_worker(storage_url: str | None, max_pixels: int) -> None:
    """Once per worker process (local pool or Ray): the image store to write to, the limits."""
    global _worker_storage, _worker_max_pixels
    if storage_url is not None:
        from skinctl.storage import open_storage

        _worker_storage = open_storage(storage_url)
    else:
        _worker_storage = None
    _worker_max_pixels = max_pixels


def read_file(path: Path) -> bytes:
    """The file's bytes; ImageRejected for what cannot be read (loops, permissions, devices)."""
    try:
        info = os.stat(path)  # follows symlinks: a loop raises ELOOP here
        if not stat.S_ISREG(info.st_mode):
            raise ImageRejected("not_a_file", "not a regular file (a device, socket or pipe)")
        if info.st_size > MAX_FILE_BYTES:
            raise ImageRejected(
                "too_large", f"{info.st_size:,} bytes is over the limit of {MAX_FILE_BYTES:,}"
            )
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise ImageRejected(
                "symlink_loop", "symbolic link loop (the link points back at itself)"
            ) from None
        if error.errno in (errno.EACCES, errno.EPERM):
            raise ImageRejected("unreadable", "permission denied") from None
        if error.errno == errno.ENOENT:
            raise ImageRejected(
                "missing_file", "file vanished or is a dangling symbolic link"
            ) from None
        raise ImageRejected(
            "unreadable", f"cannot read the file: {error.strerror or error}"
        ) from None


def read_source(locator: str) -> bytes:
    """The bytes of a local file or of a bucket object (`gs://...`, listed by the scan)."""
    if not locator.startswith("gs://"):
        return read_file(Path(locator))
    from skinctl.errors import StorageError
    from skinctl.storage.gcs import read_object

    try:
        return read_object(locator)
    except StorageError as error:
        raise ImageRejected("unreadable", f"cannot read the object: {error}") from None


def process_file(task: tuple[int, str]) -> Outcome:
    """Read, validate, hash and (unless a dry run) store one file or bucket object."""
    index, locator = task
    try:
        data = read_source(locator)
        facts = analyse_bytes(data, _worker_max_pixels)
    except ImageRejected as rejected:
        return Outcome(index, reason=rejected.reason, detail=rejected.detail)
    except Exception as error:  # noqa: BLE001 - a decoder tripping on a malformed file: reject it
        return Outcome(
            index, reason="corrupt", detail=f"the decoder failed: {type(error).__name__}: {error}"
        )
    outcome = Outcome(index, facts=facts)
    if _worker_storage is not None:
        from skinctl.storage import content_key

        key = content_key(facts.sha256, facts.ext)
        outcome.stored_new = _worker_storage.put(key, data)
        outcome.image_url = _worker_storage.url_for(key)
    return outcome


def outcomes(
    paths: list[str],
    *,
    engine: ComputeEngine,
    storage_url: str | None,
    max_pixels: int,
) -> Iterator[Outcome]:
    """One outcome per path (a file or a gs:// object), in order (`Outcome.index` is the position
    in `paths`), computed on `engine` (the local pool or Ray). `storage_url` None: store nothing
    (a dry run)."""
    return engine.map_ordered(
        process_file,
        list(enumerate(paths)),
        initializer=_init_worker,
        initargs=(storage_url, max_pixels),
    )
