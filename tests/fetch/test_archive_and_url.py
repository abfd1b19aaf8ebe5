"""Safe extraction, `--url` downloads with Range resume and SHA-256, `--from` files and folders."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from skinctl.datasets.catalog import fetched_copies, get_entry, resolve_fetched
from skinctl.errors import FetchError
from skinctl.fetch.archive import UnsafeArchive, extract_archive
from skinctl.fetch.service import FetchRequest, fetch_dataset
from tests.fetch.fakes import build_zip, sample_files


def _tree(path: Path) -> dict[str, bytes]:
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in path.rglob("*") if p.is_file()}


def _tar(
    path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]], mode: str = "w:gz"
) -> Path:
    with tarfile.open(path, mode) as archive:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
            else:
                archive.addfile(info)
    return path


def _zip_with_symlink(path: Path, name: str, target: str) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("ok/a.jpg", b"fine")
        info = zipfile.ZipInfo(name)
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, target)
    return path


# --- safe extraction --------------------------------------------------------------------------


def test_zip_with_dotdot_entry_is_refused_by_name(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("good/a.jpg", b"a")
        handle.writestr("../evil", b"owned")
    with pytest.raises(UnsafeArchive, match=r"entry '\.\./evil' points outside"):
        extract_archive(archive, tmp_path / "out")
    assert not (tmp_path / "evil").exists()
    assert not (tmp_path / "out" / "good" / "a.jpg").exists()  # checked before writing anything


def test_tar_with_absolute_path_is_refused(tmp_path):
    archive = _tar(tmp_path / "abs.tar.gz", [(tarfile.TarInfo("/tmp/skinctl-absolute-evil"), b"x")])
    with pytest.raises(
        UnsafeArchive, match=r"entry '/tmp/skinctl-absolute-evil' has an absolute path"
    ):
        extract_archive(archive, tmp_path / "out")
    assert not Path("/tmp/skinctl-absolute-evil").exists()


def test_zip_with_absolute_path_is_refused(tmp_path):
    archive = tmp_path / "abs.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr(zipfile.ZipInfo("/etc/skinctl-evil"), b"x")
    with pytest.raises(UnsafeArchive, match="absolute path"):
        extract_archive(archive, tmp_path / "out")


def test_symlink_pointing_outside_is_refused(tmp_path):
    link = tarfile.TarInfo("data/escape")
    link.type = tarfile.SYMTYPE
    link.linkname = "../../outside"
    archive = _tar(
        tmp_path / "link.tar", [(tarfile.TarInfo("data/a.jpg"), b"a"), (link, None)], mode="w"
    )
    with pytest.raises(UnsafeArchive, match=r"link 'data/escape' points outside the folder"):
        extract_archive(archive, tmp_path / "out")

    absolute = tarfile.TarInfo("etc-link")
    absolute.type = tarfile.SYMTYPE
    absolute.linkname = "/etc/passwd"
    archive = _tar(tmp_path / "abslink.tar", [(absolute, None)], mode="w")
    with pytest.raises(UnsafeArchive, match=r"link 'etc-link' points outside"):
        extract_archive(archive, tmp_path / "out2")

    zipped = _zip_with_symlink(tmp_path / "link.zip", "ok/escape", "../../../etc/passwd")
    with pytest.raises(UnsafeArchive, match=r"link 'ok/escape' points outside"):
        extract_archive(zipped, tmp_path / "out3")


def test_hard_link_outside_and_device_files_are_refused(tmp_path):
    hard = tarfile.TarInfo("hard")
    hard.type = tarfile.LNKTYPE
    hard.linkname = "../secret"
    with pytest.raises(UnsafeArchive, match="link 'hard' points outside"):
        extract_archive(_tar(tmp_path / "hard.tar", [(hard, None)], "w"), tmp_path / "o1")
    device = tarfile.TarInfo("dev/null-ish")
    device.type = tarfile.CHRTYPE
    device.devmajor, device.devminor = 1, 3
    with pytest.raises(UnsafeArchive, match=r"entry 'dev/null-ish' is a device or special file"):
        extract_archive(_tar(tmp_path / "dev.tar", [(device, None)], "w"), tmp_path / "o2")


def test_symlink_inside_is_kept(tmp_path):
    link = tarfile.TarInfo("data/latest.jpg")
    link.type = tarfile.SYMTYPE
    link.linkname = "a.jpg"
    archive = _tar(
        tmp_path / "ok.tar.gz", [(tarfile.TarInfo("data/a.jpg"), b"pixels"), (link, None)]
    )
    result = extract_archive(archive, tmp_path / "out")
    assert result.files == 1
    assert os.readlink(tmp_path / "out/data/latest.jpg") == "a.jpg"
    assert (tmp_path / "out/data/latest.jpg").read_bytes() == b"pixels"


def test_uncompressed_size_limit_names_the_entry(tmp_path):
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as handle:
        handle.writestr("small.txt", b"x" * 100)
        handle.writestr("huge.bin", b"\0" * 200_000)  # compresses to almost nothing
    assert archive.stat().st_size < 5_000
    with pytest.raises(UnsafeArchive, match=r"limit of 100,000 bytes at entry 'huge.bin'"):
        extract_archive(archive, tmp_path / "out", max_bytes=100_000)


def test_damaged_archive_is_a_clear_error(tmp_path):
    good = build_zip({"a.jpg": os.urandom(10_000)})
    archive = tmp_path / "damaged.zip"
    archive.write_bytes(good[:2000] + b"\0" * 100 + good[2100:])
    with pytest.raises(FetchError, match="damaged"):
        extract_archive(archive, tmp_path / "out")


# --- --url ------------------------------------------------------------------------------------


def test_url_download_resumes_after_cut_and_checks_sha256(fake_server, fetch_settings, monkeypatch):
    from skinctl.fetch import download

    monkeypatch.setattr(download, "RETRY_BASE_DELAY", 0.01)
    files = sample_files()
    archive = build_zip(files)
    fake_server.plain["facial.zip"] = archive
    fake_server.fault("plain", *["cut"] * 4)  # the first run gives up after 4 attempts
    entry = get_entry("facial-skin-condition", fetch_settings)
    url = f"{fake_server.base}/plain/facial.zip?X-Goog-Signature=very-secret"
    digest = hashlib.sha256(archive).hexdigest()
    request = FetchRequest(url=url, sha256=digest)

    with pytest.raises(FetchError, match="failed after 4 attempts") as failure:
        fetch_dataset(entry, fetch_settings, request)
    assert "very-secret" not in failure.value.message
    assert fetched_copies("facial-skin-condition", fetch_settings) == []

    fake_server.log.clear()
    result = fetch_dataset(entry, fetch_settings, request)
    assert _tree(result.path) == files
    assert result.sha256 == digest and result.version == f"sha256-{digest[:12]}"
    assert "very-secret" not in result.origin
    ((_method, _path, headers),) = fake_server.requests_to("/plain/")
    assert int(headers["Range"].removeprefix("bytes=").removesuffix("-")) > len(archive) // 2

    fake_server.log.clear()
    again = fetch_dataset(entry, fetch_settings, request)
    assert again.cached and not fake_server.log  # known checksum, complete copy: no request at all


def test_url_download_with_wrong_sha256_is_deleted(fake_server, fetch_settings, fetch_cli):
    fake_server.plain["cosing.csv"] = b"INCI name,Function\nAQUA,SOLVENT\n"
    result = fetch_cli(
        "fetch",
        "get",
        "cosing",
        "--url",
        f"{fake_server.base}/plain/cosing.csv",
        "--sha256",
        "0" * 64,
    )
    assert result.exit_code == 1
    assert "SHA-256 mismatch" in result.stderr
    assert not list((fetch_settings.home / "datasets/cosing/.downloads").glob("*"))
    assert fetched_copies("cosing", fetch_settings) == []

    ok = fetch_cli(
        "fetch", "get", "cosing", "--url", f"{fake_server.base}/plain/cosing.csv", "--json"
    )
    assert ok.exit_code == 0, ok.stderr
    path = Path(ok.json()["path"])
    assert (path / "cosing.csv").read_bytes() == fake_server.plain["cosing.csv"]
    assert resolve_fetched("cosing", fetch_settings) == (path, "cosing")


def test_url_404_and_server_ignoring_range(fake_server, fetch_settings, monkeypatch):
    from skinctl.errors import NotFound
    from skinctl.fetch import download

    monkeypatch.setattr(download, "RETRY_BASE_DELAY", 0.01)
    entry = get_entry("cosing", fetch_settings)
    with pytest.raises(NotFound, match="404"):
        fetch_dataset(
            entry, fetch_settings, FetchRequest(url=f"{fake_server.base}/plain/missing.csv")
        )

    # A server that ignores Range sends the whole file again: the download restarts from zero.
    data = os.urandom(400_000)
    fake_server.plain["annex.zip"] = build_zip({"COSING_Annex_III_v2.txt": data})
    fake_server.ignore_range = True
    fake_server.fault("plain", "cut")
    result = fetch_dataset(
        entry, fetch_settings, FetchRequest(url=f"{fake_server.base}/plain/annex.zip")
    )
    assert _tree(result.path) == {"COSING_Annex_III_v2.txt": data}
    assert "Range" in fake_server.requests_to("/plain/annex.zip")[-1][2]


# --- --from -----------------------------------------------------------------------------------


def test_from_zip_tar_and_folder(fetch_settings, tmp_path, fetch_cli):
    files = sample_files(30_000)
    archive = tmp_path / "facial.zip"
    archive.write_bytes(build_zip(files))
    result = fetch_cli("fetch", "get", "facial-skin-condition", "--from", str(archive), "--json")
    assert result.exit_code == 0, result.stderr
    assert _tree(Path(result.json()["path"])) == files
    again = fetch_cli("fetch", "get", "facial-skin-condition", "--from", str(archive), "--json")
    assert again.json()["cached"] is True

    tarball = tmp_path / "cosing.tar.gz"
    _tar(tarball, [(tarfile.TarInfo("COSING_Annex_II_v2.txt"), b"a;b\n")])
    result = fetch_dataset(
        get_entry("cosing", fetch_settings), fetch_settings, FetchRequest(from_path=tarball)
    )
    assert _tree(result.path) == {"COSING_Annex_II_v2.txt": b"a;b\n"}

    folder = tmp_path / "images"
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    registered = fetch_dataset(
        get_entry("skin-types", fetch_settings), fetch_settings, FetchRequest(from_path=folder)
    )
    assert registered.path == folder  # a folder is registered where it is, not copied
    assert resolve_fetched("skin-types", fetch_settings) == (folder, "folders")


def test_from_unsafe_archive_fails_cleanly_via_cli(fetch_settings, tmp_path, fetch_cli):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("../evil", b"x")
    result = fetch_cli("fetch", "get", "facial-skin-condition", "--from", str(archive))
    assert result.exit_code == 1
    assert "'../evil'" in result.stderr and "Traceback" not in result.stderr
    assert fetched_copies("facial-skin-condition", fetch_settings) == []
    assert not (tmp_path / "evil").exists()


def test_commercial_set_without_source_explains_how(fetch_cli):
    result = fetch_cli("fetch", "get", "facial-skin-condition")
    assert result.exit_code == 2
    assert "--from" in result.stderr and "--url" in result.stderr


def test_download_that_finished_before_a_crash_is_not_fetched_again(fake_server, fetch_settings):
    """The .part is complete but the run died before extracting: Range past the end (416)."""
    data = build_zip({"COSING_Ingredients.csv": b"INCI name\nAQUA\n"})
    fake_server.plain["inv.zip"] = data
    url = f"{fake_server.base}/plain/inv.zip"
    part = (
        fetch_settings.home
        / "datasets/cosing/.downloads"
        / f"url-{hashlib.sha256(url.encode()).hexdigest()[:16]}.part"
    )
    part.parent.mkdir(parents=True)
    part.write_bytes(data)
    result = fetch_dataset(
        get_entry("cosing", fetch_settings),
        fetch_settings,
        FetchRequest(url=url, sha256=hashlib.sha256(data).hexdigest()),
    )
    assert _tree(result.path) == {"COSING_Ingredients.csv": b"INCI name\nAQUA\n"}
    ((_method, _path, headers),) = fake_server.requests_to("/plain/")
    assert headers["Range"] == f"bytes={len(data)}-"
