"""Safe extraction of zip and tar archives.

Every entry is checked before anything is written: absolute paths, `..` components, links that
point outside the target, device files and FIFOs, and a total uncompressed size beyond a limit
are refused with the entry's name. Links are created last, so no file is ever written through one.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from skinctl.errors import FetchError
from skinctl.progress import ReportProgress, no_progress

# Progress stages (bytes written so far, of the archive's or folder's total).
EXTRACT_STAGE = "extract"
COPY_STAGE = "copy"

DEFAULT_MAX_UNCOMPRESSED = 64 * 1024**3  # 64 GiB: far above any dataset here, below a zip bomb


class UnsafeArchive(FetchError):
    """An archive entry that would escape the target folder or is not a plain file."""

    default_hint = (
        "The archive was not extracted. Get it from a trusted source, or unpack it "
        "yourself and use --from FOLDER."
    )


@dataclass(frozen=True)
class ExtractResult:
    files: int
    bytes: int


def archive_kind(path: Path) -> str | None:
    """'zip', 'tar' or None."""
    if zipfile.is_zipfile(path):
        return "zip"
    try:
        if tarfile.is_tarfile(path):
            return "tar"
    except OSError:
        return None
    return None


def _safe_name(archive: Path, name: str) -> str:
    """The entry's normalised relative path, or UnsafeArchive."""
    if not name:
        raise UnsafeArchive(f"{archive.name}: an entry has an empty name.")
    cleaned = name.replace("\\", "/")
    if cleaned.startswith("/") or (len(cleaned) > 1 and cleaned[1] == ":"):
        raise UnsafeArchive(f"{archive.name}: entry {name!r} has an absolute path.")
    parts = PurePosixPath(cleaned).parts
    if ".." in parts:
        raise UnsafeArchive(f"{archive.name}: entry {name!r} points outside the folder ('..').")
    normal = posixpath.normpath(cleaned)
    return "" if normal == "." else normal


def _check_link(archive: Path, name: str, target: str, *, hard: bool) -> None:
    """A link target must stay inside: relative, and not climbing above the root."""
    cleaned = target.replace("\\", "/")
    if cleaned.startswith("/") or (len(cleaned) > 1 and cleaned[1] == ":"):
        raise UnsafeArchive(
            f"{archive.name}: link {name!r} points outside the folder (to {target!r})."
        )
    # Hard link targets are relative to the archive root, symlinks to the link's own folder.
    base = "" if hard else posixpath.dirname(name)
    joined = posixpath.normpath(posixpath.join(base, cleaned))
    if joined == ".." or joined.startswith("../"):
        raise UnsafeArchive(
            f"{archive.name}: link {name!r} points outside the folder (to {target!r})."
        )


def _check_total(archive: Path, name: str, total: int, limit: int) -> None:
    if total > limit:
        raise UnsafeArchive(
            f"{archive.name}: uncompressed size passes the limit of {limit:,} bytes at entry {name!r}.",
            hint="If the archive is trusted, raise the limit with --max-size.",
        )


def _write_file(
    source: IO[bytes], destination: Path, report: ReportProgress, done: int, total: int
) -> int:
    """Copy `source` to `destination`, reporting `done` + bytes written so far; returns the
    bytes written."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with open(destination, "wb") as out:
        while chunk := source.read(1024 * 1024):
            out.write(chunk)
            written += len(chunk)
            report(EXTRACT_STAGE, done + written, total)
    return written


def _extract_zip(archive: Path, target: Path, limit: int, report: ReportProgress) -> ExtractResult:
    with zipfile.ZipFile(archive) as handle:
        infos = handle.infolist()
        plan: list[tuple[zipfile.ZipInfo, str, str]] = []  # (info, relative name, kind)
        total = 0
        for info in infos:
            relative = _safe_name(archive, info.filename)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                link_target = handle.read(info).decode("utf-8", "replace")
                _check_link(archive, relative, link_target, hard=False)
                plan.append((info, relative, "link:" + link_target))
            elif (
                stat.S_ISCHR(mode)
                or stat.S_ISBLK(mode)
                or stat.S_ISFIFO(mode)
                or stat.S_ISSOCK(mode)
            ):
                raise UnsafeArchive(
                    f"{archive.name}: entry {info.filename!r} is a device or special file."
                )
            elif info.is_dir():
                plan.append((info, relative, "dir"))
            else:
                total += info.file_size
                _check_total(archive, info.filename, total, limit)
                plan.append((info, relative, "file"))
        files = 0
        written = 0
        for info, relative, kind in plan:
            if not relative:
                continue
            destination = target / relative
            if kind == "dir":
                destination.mkdir(parents=True, exist_ok=True)
            elif kind == "file":
                with handle.open(info) as source:  # ZipExtFile stops at the declared size
                    written += _write_file(source, destination, report, written, total)
                files += 1
        for _info, relative, kind in plan:
            if kind.startswith("link:"):
                destination = target / relative
                destination.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(kind[5:], destination)
        return ExtractResult(files, written)


def _extract_tar(archive: Path, target: Path, limit: int, report: ReportProgress) -> ExtractResult:
    with tarfile.open(archive) as handle:
        members = handle.getmembers()
        total = 0
        links: list[tarfile.TarInfo] = []
        regular: list[tarfile.TarInfo] = []
        for member in members:
            relative = _safe_name(archive, member.name)
            if member.isdev() or member.isfifo():
                raise UnsafeArchive(
                    f"{archive.name}: entry {member.name!r} is a device or special file."
                )
            if member.issym() or member.islnk():
                _check_link(archive, relative, member.linkname, hard=member.islnk())
                links.append(member)
            elif member.isfile():
                total += member.size
                _check_total(archive, member.name, total, limit)
                regular.append(member)
            elif member.isdir():
                if relative:
                    (target / relative).mkdir(parents=True, exist_ok=True)
            else:
                raise UnsafeArchive(
                    f"{archive.name}: entry {member.name!r} has an unsupported type."
                )
        files = 0
        written = 0
        for member in regular:
            source = handle.extractfile(member)
            if source is None:
                continue
            with source:
                written += _write_file(
                    source, target / _safe_name(archive, member.name), report, written, total
                )
            files += 1
        # The "data" filter re-checks each link as tarfile itself understands it.
        for member in links:
            handle.extract(member, target, filter="data")
        return ExtractResult(files, written)


def extract_archive(
    archive: Path,
    target: Path,
    *,
    max_bytes: int = DEFAULT_MAX_UNCOMPRESSED,
    report: ReportProgress = no_progress,
) -> ExtractResult:
    """Extract a zip or tar(.gz/.bz2/.xz) archive into `target` (created), refusing unsafe entries.
    Reports stage "extract" in bytes.

    On refusal nothing of the archive is left in `target` that a caller should trust: callers
    extract into a staging folder and only publish it when this returns.
    """
    kind = archive_kind(archive)
    target.mkdir(parents=True, exist_ok=True)
    try:
        if kind == "zip":
            return _extract_zip(archive, target, max_bytes, report)
        if kind == "tar":
            return _extract_tar(archive, target, max_bytes, report)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as error:
        raise FetchError(
            f"{archive.name} is damaged: {error}.",
            hint="Fetch it again with --force.",
        ) from error
    raise FetchError(
        f"{archive.name} is neither a zip nor a tar archive.",
        hint="Pass a .zip, .tar, .tar.gz file, or a folder, to --from.",
    )


def copy_tree(source: Path, target: Path, report: ReportProgress = no_progress) -> ExtractResult:
    """Copy a folder's regular files into `target`, refusing links that leave `source`.
    Reports stage "copy" in bytes."""
    source = source.resolve()
    files = 0
    written = 0
    paths = sorted(source.rglob("*"))
    total = sum(path.stat().st_size for path in paths if path.is_file())
    for path in paths:
        relative = path.relative_to(source)
        if path.is_symlink():
            resolved = path.resolve()
            if not resolved.is_relative_to(source):
                raise UnsafeArchive(
                    f"{source}: link {relative.as_posix()!r} points outside the folder."
                )
        if path.is_file():
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, destination)
            size = destination.stat().st_size
            written += size
            files += 1
            report(COPY_STAGE, written, total)
    return ExtractResult(files, written)
