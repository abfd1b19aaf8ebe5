"""Resumable http(s) downloads with checksum verification, reporting progress in bytes.

A download writes to `<name>.part`; after a cut connection the next attempt (in this run, or in
the next run of the command) asks for the rest with a `Range` header. A server that ignores
Range makes it start over from zero. The file is only handed back once its size (and checksum,
when one is known) is right.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from skinctl.errors import FetchError, NotFound
from skinctl.progress import ReportProgress, no_progress

if TYPE_CHECKING:
    import requests

CHUNK_SIZE = 64 * 1024  # small enough that a cut loses little of what already arrived
ATTEMPTS = 4
RETRY_BASE_DELAY = 0.5  # seconds; doubles after each failed attempt
TIMEOUT = (10, 60)  # connect, read (seconds between bytes)
DOWNLOAD_STAGE = "download"  # progress stage: bytes in the .part file, of the file's size

OpenResponse = Callable[[dict[str, str]], "requests.Response"]


def safe_url(url: str) -> str:
    """The URL without credentials or query string (signed URLs carry their secret there)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def file_digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            digest.update(chunk)
    return digest.hexdigest()


def _content_range_start(value: str | None) -> int | None:
    # "bytes 100-199/200"
    if not value or not value.startswith("bytes "):
        return None
    try:
        return int(value[6:].split("-", 1)[0])
    except ValueError:
        return None


def _total_size(response: requests.Response, have: int) -> int | None:
    if response.status_code == 206:
        content_range = response.headers.get("Content-Range", "")
        total = content_range.rsplit("/", 1)[-1]
        return int(total) if total.isdigit() else None
    length = response.headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None


def goog_md5(response: requests.Response) -> str | None:
    """The base64 MD5 from an `x-goog-hash` header (GCS-signed Kaggle downloads carry it)."""
    for item in response.headers.get("x-goog-hash", "").split(","):
        name, _, value = item.strip().partition("=")
        if name == "md5" and value:
            return value
    return None


class RetryableError(Exception):
    """A failure worth another attempt: cut connection, short body, 5xx."""


def download(
    open_response: OpenResponse,
    part: Path,
    *,
    label: str,
    report: ReportProgress = no_progress,
    attempts: int = ATTEMPTS,
    on_error: Callable[[requests.Response], None] | None = None,
) -> tuple[Path, str | None]:
    """Download into `part`, resuming what is already there. Returns the path and the server's
    base64 MD5 (x-goog-hash) when it sent one. `on_error(response)` may raise a better error for
    a 4xx answer; otherwise a generic FetchError names the status. Reports stage "download"."""
    import requests

    part.parent.mkdir(parents=True, exist_ok=True)
    md5_b64: str | None = None
    last_error: Exception | None = None
    for attempt in range(attempts):
        if attempt:
            time.sleep(RETRY_BASE_DELAY * 2 ** (attempt - 1))
        have = part.stat().st_size if part.exists() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        try:
            with open_response(headers) as response:
                if response.status_code == 416 and have:
                    total = response.headers.get("Content-Range", "").rsplit("/", 1)[-1]
                    if total.isdigit() and int(total) == have:
                        return part, md5_b64  # finished earlier; the checksum step decides
                    part.unlink()  # longer than the file: it cannot be trusted, start over
                    raise RetryableError("the server refused the resume range")
                if response.status_code >= 500:
                    raise RetryableError(f"the server answered {response.status_code}")
                if response.status_code == 404:
                    raise NotFound(f"{label} does not exist on the server (404).")
                if response.status_code >= 400:
                    if on_error:
                        on_error(response)
                    raise FetchError(
                        f"Downloading {label} failed: the server answered {response.status_code}."
                    )
                md5_b64 = goog_md5(response) or md5_b64
                resumed = (
                    response.status_code == 206
                    and _content_range_start(response.headers.get("Content-Range")) == have
                )
                if not resumed:
                    have = 0  # the server sent the whole file
                total = _total_size(response, have)
                done = have
                report(DOWNLOAD_STAGE, done, total)
                with open(part, "ab" if resumed else "wb") as out:
                    for chunk in response.iter_content(CHUNK_SIZE):
                        out.write(chunk)
                        done += len(chunk)
                        report(DOWNLOAD_STAGE, done, total)
                size = part.stat().st_size
                if total is not None and size != total:
                    raise RetryableError(f"got {size:,} of {total:,} bytes")
                return part, md5_b64
        except RetryableError as error:
            last_error = error
        except (
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
        ) as error:
            last_error = error
    raise FetchError(
        f"Downloading {label} failed after {attempts} attempts: {_describe(last_error)}.",
        hint="Run the same command again: it resumes from the bytes already downloaded.",
    )


def _describe(error: Exception | None) -> str:
    if error is None:
        return "unknown error"
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return text[:200]


def verify(part: Path, *, sha256: str | None = None, md5_b64: str | None = None, label: str) -> str:
    """Check the finished file; a mismatch deletes it (it cannot be resumed into shape)."""
    actual = file_digest(part, "sha256")
    if sha256 and actual != sha256.lower():
        part.unlink(missing_ok=True)
        raise FetchError(
            f"{label}: SHA-256 mismatch (expected {sha256.lower()}, got {actual}); the file was deleted.",
            hint="Check the --sha256 value, or the URL; then run the command again.",
        )
    if md5_b64:
        digest = hashlib.md5()
        with open(part, "rb") as handle:
            while chunk := handle.read(CHUNK_SIZE):
                digest.update(chunk)
        if base64.b64encode(digest.digest()).decode() != md5_b64:
            part.unlink(missing_ok=True)
            raise FetchError(
                f"{label}: MD5 does not match what the server announced; the file was deleted.",
                hint="Run the command again to download it afresh.",
            )
    return actual


@contextmanager
def http_session() -> Iterator[requests.Session]:
    import requests

    from skinctl import __version__

    with requests.Session() as session:
        session.headers["User-Agent"] = f"skinctl/{__version__}"
        yield session


def url_opener(session: requests.Session, url: str) -> OpenResponse:
    def open_response(headers: dict[str, str]) -> requests.Response:
        return session.get(url, headers=headers, stream=True, timeout=TIMEOUT)

    return open_response
