"""`fetch get`: bring a catalog dataset into the download cache, once.

Cache layout under SKINCTL_HOME/datasets/<slug>/:

    <version>/                  the dataset's files (or --output-dir, or a registered folder)
    <version>.complete.json     completion marker: written last, so only a finished fetch has one
    .downloads/<name>.part      a download in progress; kept after an interruption to resume
    .staging-<version>/         an extraction in progress; thrown away if found later
    .lock                       one fetch of a dataset at a time

Versions: Kaggle `v<N>`; a URL or local archive `sha256-<first 12 hex>`; a local folder
`local-<hash of its listing>`.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from skinctl.config import Settings
from skinctl.datasets.catalog import (
    MARKER_SUFFIX,
    DatasetEntry,
    FetchedCopy,
    datasets_dir,
    fetched_copies,
)
from skinctl.errors import CredentialsError, FetchError, InputRejected, UsageError
from skinctl.fetch import download as dl
from skinctl.fetch.archive import (
    COPY_STAGE,
    DEFAULT_MAX_UNCOMPRESSED,
    EXTRACT_STAGE,
    ExtractResult,
    archive_kind,
    copy_tree,
    extract_archive,
)
from skinctl.progress import ReportProgress, no_progress

# Every progress stage of a fetch counts bytes.
BYTE_STAGES = frozenset({dl.DOWNLOAD_STAGE, EXTRACT_STAGE, COPY_STAGE})


@dataclass(frozen=True)
class FetchResult:
    slug: str
    version: str
    path: Path
    source: str  # kaggle | url | local
    origin: str  # what was fetched (reference, URL without query, local path)
    files: int
    bytes: int
    sha256: str | None
    cached: bool  # True when a complete copy was already there and nothing was fetched
    layout: str
    # Said to the user (on stderr), not part of the JSON: why a cached copy stood in.
    notice: str | None = None

    def to_dict(self) -> dict:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "notice"}
        data["path"] = str(self.path)
        return data


@dataclass(frozen=True)
class FetchRequest:
    url: str | None = None
    sha256: str | None = None
    from_path: Path | None = None
    output_dir: Path | None = None
    force: bool = False
    max_bytes: int = DEFAULT_MAX_UNCOMPRESSED


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


@contextmanager
def _locked(folder: Path, slug: str) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FetchError(
                f"Another skinctl is fetching {slug!r} right now.",
                hint="Wait for it to finish, then run the command again.",
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _marker_path(folder: Path, version: str) -> Path:
    return folder / f"{version}{MARKER_SUFFIX}"


def _complete_copy(slug: str, settings: Settings, version: str) -> FetchedCopy | None:
    for copy in fetched_copies(slug, settings):
        if copy.version == version:
            return copy
    return None


def _write_marker(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
    os.replace(tmp, path)


class _Publisher:
    """Where the files of one fetch go: a staging folder first, then the final folder."""

    def __init__(self, folder: Path, version: str, output_dir: Path | None, force: bool) -> None:
        self.folder = folder
        self.version = version
        self.final = (output_dir or folder / version).absolute()
        parent = self.final.parent
        self.staging = parent / f".staging-{self.final.name}"
        self.marker = _marker_path(folder, version)
        self.force = force
        self.owned = output_dir is None  # a folder inside our cache may be replaced freely

    def prepare(self) -> Path:
        if self.staging.exists():
            shutil.rmtree(self.staging)  # an interrupted extraction: never trusted
        if self.final.exists() and any(self.final.iterdir()) and not self.owned:
            previous = _recorded_path(self.folder)
            if self.final not in previous and not self.force:
                raise UsageError(
                    f"--output-dir {self.final} is not empty.",
                    hint="Choose an empty or new folder, or add --force to replace its contents.",
                )
        self.staging.mkdir(parents=True)
        return self.staging

    def publish(self, record: dict) -> Path:
        self.marker.unlink(missing_ok=True)
        if self.final.exists():
            trash = self.final.with_name(f".old-{self.final.name}")
            if trash.exists():
                shutil.rmtree(trash)
            os.replace(self.final, trash)
            shutil.rmtree(trash)
        self.final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.staging, self.final)
        _write_marker(self.marker, {**record, "path": str(self.final)})
        return self.final


def _recorded_path(folder: Path) -> set[Path]:
    paths: set[Path] = set()
    for marker in folder.glob("*" + MARKER_SUFFIX):
        try:
            paths.add(Path(json.loads(marker.read_text())["path"]))
        except (OSError, ValueError, KeyError):
            continue
    return paths


def _result(entry: DatasetEntry, copy: FetchedCopy, cached: bool) -> FetchResult:
    return FetchResult(
        slug=entry.slug,
        version=copy.version,
        path=copy.path,
        source=copy.source,
        origin=copy.origin,
        files=copy.files,
        bytes=copy.bytes,
        sha256=copy.sha256,
        cached=cached,
        layout=entry.layout,
    )


def _unpack(
    source: Path, staging: Path, request: FetchRequest, name_hint: str, report: ReportProgress
) -> ExtractResult:
    """Extract an archive into staging, or copy a single non-archive file (a CSV export)."""
    if archive_kind(source) is not None:
        return extract_archive(source, staging, max_bytes=request.max_bytes, report=report)
    target = staging / name_hint
    shutil.copyfile(source, target)
    return ExtractResult(1, target.stat().st_size)


def _finish(
    entry: DatasetEntry,
    publisher: _Publisher,
    settings: Settings,
    *,
    source: str,
    origin: str,
    unpacked: ExtractResult,
    sha256: str | None,
    extra: dict[str, Any],
) -> FetchResult:
    record = {
        "slug": entry.slug,
        "version": publisher.version,
        "fetched_at": _now(),
        "source": source,
        "origin": origin,
        "files": unpacked.files,
        "bytes": unpacked.bytes,
        "sha256": sha256,
        **extra,
    }
    publisher.publish(record)
    copy = _complete_copy(entry.slug, settings, publisher.version)
    assert copy is not None
    return _result(entry, copy, cached=False)


# --- the three sources ------------------------------------------------------------------------


def _fetch_kaggle(
    entry: DatasetEntry,
    settings: Settings,
    request: FetchRequest,
    folder: Path,
    report: ReportProgress,
) -> FetchResult:
    from skinctl.fetch import kaggle

    reference = entry.reference
    with kaggle.kaggle_client(reference) as client:
        try:
            number = kaggle.current_version(client, reference)
        except FetchError as error:
            copies = fetched_copies(entry.slug, settings)
            if copies and not request.force and not isinstance(error, CredentialsError):
                # Offline, or Kaggle is down: the copy we have is better than nothing; the
                # command says so.
                notice = f"{error.message} Using the copy fetched on {copies[0].fetched_at[:10]}."
                return replace(_result(entry, copies[0], cached=True), notice=notice)
            raise
        version = f"v{number}"
        existing = _complete_copy(entry.slug, settings, version)
        if (
            existing
            and not request.force
            and (not request.output_dir or existing.path == request.output_dir.absolute())
        ):
            return _result(entry, existing, cached=True)
        part = folder / ".downloads" / f"{version}.zip.part"
        if request.force and part.exists():
            part.unlink()
        _part, md5_b64 = kaggle.download_archive(client, reference, number, part, report)
    # Kaggle's archive host announces an MD5 (x-goog-hash); a mismatch deletes the download.
    dl.verify(part, md5_b64=md5_b64, label=f"Kaggle dataset {reference} {version}")
    return _extract_and_finish(
        entry,
        settings,
        request,
        folder,
        version,
        part,
        "kaggle",
        reference,
        name_hint="data",
        extra={"kaggle_version": number},
        report=report,
    )


def _extract_and_finish(
    entry: DatasetEntry,
    settings: Settings,
    request: FetchRequest,
    folder: Path,
    version: str,
    part: Path,
    source: str,
    origin: str,
    *,
    name_hint: str,
    extra: dict[str, Any],
    report: ReportProgress,
) -> FetchResult:
    publisher = _Publisher(folder, version, request.output_dir, request.force)
    staging = publisher.prepare()
    sha256 = dl.file_digest(part, "sha256")
    unpacked = _unpack(part, staging, request, name_hint, report)
    result = _finish(
        entry,
        publisher,
        settings,
        source=source,
        origin=origin,
        unpacked=unpacked,
        sha256=sha256,
        extra=extra,
    )
    part.unlink(missing_ok=True)  # the extracted copy is what we keep
    return result


def _name_from_url(url: str) -> str:
    name = unquote(urlsplit(url).path.rsplit("/", 1)[-1]) or "download"
    return name.replace("/", "_") or "download"


def _fetch_url(
    entry: DatasetEntry,
    settings: Settings,
    request: FetchRequest,
    folder: Path,
    url: str,
    sha256: str | None,
    report: ReportProgress,
) -> FetchResult:
    url_id = hashlib.sha256(url.encode()).hexdigest()[:16]  # identifies a URL without storing it
    if not request.force:
        for copy in fetched_copies(entry.slug, settings):
            if (sha256 and copy.sha256 == sha256) or (
                not sha256 and copy.extra.get("url") == url_id
            ):
                if not request.output_dir or copy.path == request.output_dir.absolute():
                    return _result(entry, copy, cached=True)
    part = folder / ".downloads" / f"url-{url_id}.part"
    if request.force and part.exists():
        part.unlink()
    label = dl.safe_url(url)
    with dl.http_session() as session:
        dl.download(dl.url_opener(session, url), part, label=label, report=report)
    actual = dl.verify(part, sha256=sha256, label=label)
    version = f"sha256-{actual[:12]}"
    return _extract_and_finish(
        entry,
        settings,
        request,
        folder,
        version,
        part,
        "url",
        label,
        name_hint=_name_from_url(url),
        extra={"url": url_id},
        report=report,
    )


def _folder_version(path: Path) -> str:
    digest = hashlib.sha256()
    for item in sorted(path.rglob("*")):
        if item.is_file():
            info = item.stat()
            digest.update(
                f"{item.relative_to(path).as_posix()}\0{info.st_size}\0{int(info.st_mtime)}\n".encode()
            )
    return f"local-{digest.hexdigest()[:12]}"


def _fetch_local(
    entry: DatasetEntry,
    settings: Settings,
    request: FetchRequest,
    folder: Path,
    source_path: Path,
    report: ReportProgress,
) -> FetchResult:
    source_path = source_path.expanduser().absolute()
    if not source_path.exists():
        raise InputRejected(
            f"--from {source_path} does not exist.", hint="Pass a zip, tar(.gz) file or a folder."
        )
    if source_path.is_dir():
        version = _folder_version(source_path)
        existing = _complete_copy(entry.slug, settings, version)
        if existing and not request.force:
            return _result(entry, existing, cached=True)
        if request.output_dir is None:
            # A folder is registered where it is: no copy of a possibly huge image tree.
            files = [p for p in source_path.rglob("*") if p.is_file()]
            record = {
                "slug": entry.slug,
                "version": version,
                "fetched_at": _now(),
                "source": "local",
                "origin": str(source_path),
                "files": len(files),
                "bytes": sum(p.stat().st_size for p in files),
                "sha256": None,
                "path": str(source_path),
            }
            _write_marker(_marker_path(folder, version), record)
            copy = _complete_copy(entry.slug, settings, version)
            assert copy is not None
            return _result(entry, copy, cached=False)
        publisher = _Publisher(folder, version, request.output_dir, request.force)
        staging = publisher.prepare()
        copied = copy_tree(source_path, staging, report)
        return _finish(
            entry,
            publisher,
            settings,
            source="local",
            origin=str(source_path),
            unpacked=copied,
            sha256=None,
            extra={},
        )
    if request.sha256:
        dl.verify(source_path, sha256=request.sha256, label=str(source_path))
    sha256 = dl.file_digest(source_path, "sha256")
    version = f"sha256-{sha256[:12]}"
    existing = _complete_copy(entry.slug, settings, version)
    if (
        existing
        and not request.force
        and (not request.output_dir or existing.path == request.output_dir.absolute())
    ):
        return _result(entry, existing, cached=True)
    publisher = _Publisher(folder, version, request.output_dir, request.force)
    staging = publisher.prepare()
    unpacked = _unpack(source_path, staging, request, source_path.name, report)
    return _finish(
        entry,
        publisher,
        settings,
        source="local",
        origin=str(source_path),
        unpacked=unpacked,
        sha256=sha256,
        extra={},
    )


def fetch_dataset(
    entry: DatasetEntry,
    settings: Settings,
    request: FetchRequest,
    report: ReportProgress = no_progress,
) -> FetchResult:
    """Fetch one dataset into the cache (or --output-dir); a complete copy is reused unless
    `force`. Raises FetchError/CredentialsError/NotFound/UsageError with a clear message.
    Progress stages, all in bytes (BYTE_STAGES): download, extract, copy."""
    if request.url and request.from_path:
        raise UsageError("Give either --url or --from, not both.")
    if request.sha256 and not (
        len(request.sha256) == 64 and all(c in "0123456789abcdefABCDEF" for c in request.sha256)
    ):
        raise UsageError(f"--sha256 {request.sha256!r} is not 64 hexadecimal characters.")
    if request.url and not request.url.startswith(("http://", "https://")):
        raise UsageError(f"--url {dl.safe_url(request.url)!r} must start with http:// or https://.")
    folder = datasets_dir(settings) / entry.slug
    output_dir = request.output_dir.absolute() if request.output_dir else None
    if (
        output_dir
        and output_dir.is_dir()
        and any(output_dir.iterdir())
        and not request.force
        and output_dir not in _recorded_path(folder)
    ):
        # Said before downloading anything; _Publisher.prepare checks again before writing.
        raise UsageError(
            f"--output-dir {output_dir} is not empty.",
            hint="Choose an empty or new folder, or add --force to replace its contents.",
        )
    with _locked(folder, entry.slug):
        if request.from_path:
            return _fetch_local(entry, settings, request, folder, request.from_path, report)
        if request.url:
            sha256 = (request.sha256 or "").lower() or None
            return _fetch_url(entry, settings, request, folder, request.url, sha256, report)
        if entry.source == "kaggle":
            return _fetch_kaggle(entry, settings, request, folder, report)
        if entry.source == "url" and entry.url:
            return _fetch_url(entry, settings, request, folder, entry.url, entry.sha256, report)
        raise UsageError(
            f"{entry.title} ({entry.slug}) cannot be downloaded automatically: {entry.reference}",
            hint=f"Run `skinctl fetch get {entry.slug} --from FILE_OR_FOLDER` or `--url URL [--sha256 HEX]`.",
        )
