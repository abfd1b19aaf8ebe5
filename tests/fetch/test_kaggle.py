"""`fetch get` for Kaggle datasets: the real kagglehub client against the local fake Kaggle."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from skinctl.datasets.catalog import fetched_copies, get_entry, resolve_fetched
from skinctl.errors import CredentialsError, FetchError, NotFound, UsageError
from skinctl.fetch.service import BYTE_STAGES, FetchRequest, fetch_dataset
from tests.fetch.fakes import build_zip, sample_files

REFERENCE = "shakyadissanayake/oily-dry-and-normal-skin-types-dataset"


@pytest.fixture
def skin_types(kaggle):
    files = sample_files()
    kaggle.datasets[REFERENCE] = (3, build_zip(files))
    return files


def _tree(path: Path) -> dict[str, bytes]:
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in path.rglob("*") if p.is_file()}


def test_fetch_downloads_extracts_and_marks_complete(kaggle, skin_types, fetch_settings):
    entry = get_entry("skin-types", fetch_settings)
    result = fetch_dataset(entry, fetch_settings, FetchRequest())

    assert (result.version, result.source, result.cached) == ("v3", "kaggle", False)
    assert result.path == fetch_settings.home / "datasets" / "skin-types" / "v3"
    assert _tree(result.path) == skin_types
    assert result.files == len(skin_types)
    marker = json.loads((fetch_settings.home / "datasets/skin-types/v3.complete.json").read_text())
    assert marker["kaggle_version"] == 3 and marker["origin"] == REFERENCE
    assert not list((fetch_settings.home / "datasets/skin-types/.downloads").glob("*.part"))
    assert resolve_fetched("skin-types", fetch_settings) == (result.path, "folders")
    # The API was asked for the version, then for the download, then the archive was fetched.
    assert [path.rsplit("/", 1)[-1] for _, path, _ in kaggle.log] == [
        "GetDataset",
        "DownloadDataset",
        "3.zip",
    ]


def test_complete_fetch_is_not_fetched_again_unless_forced(kaggle, skin_types, fetch_settings):
    entry = get_entry("skin-types", fetch_settings)
    first = fetch_dataset(entry, fetch_settings, FetchRequest())
    kaggle.log.clear()
    again = fetch_dataset(entry, fetch_settings, FetchRequest())
    assert again.cached and again.path == first.path
    assert not kaggle.requests_to("/files/")  # only the version was looked up

    kaggle.log.clear()
    forced = fetch_dataset(entry, fetch_settings, FetchRequest(force=True))
    assert not forced.cached and len(kaggle.requests_to("/files/")) == 1
    assert _tree(forced.path) == skin_types


def test_new_kaggle_version_is_fetched_next_to_the_old(kaggle, skin_types, fetch_settings):
    entry = get_entry("skin-types", fetch_settings)
    fetch_dataset(entry, fetch_settings, FetchRequest())
    newer = {**skin_types, "test/dry/new.jpg": b"new image"}
    kaggle.datasets[REFERENCE] = (4, build_zip(newer))
    result = fetch_dataset(entry, fetch_settings, FetchRequest())
    assert result.version == "v4" and _tree(result.path) == newer
    assert [c.version for c in fetched_copies("skin-types", fetch_settings)] == ["v4", "v3"]
    assert resolve_fetched("skin-types", fetch_settings)[0] == result.path


def test_connection_cut_halfway_resumes_with_range(kaggle, skin_types, fetch_settings):
    kaggle.fault("file", "cut")
    entry = get_entry("skin-types", fetch_settings)
    result = fetch_dataset(entry, fetch_settings, FetchRequest())

    assert _tree(result.path) == skin_types
    gets = kaggle.requests_to("/files/")
    assert len(gets) == 2
    assert "Range" not in gets[0][2]
    archive_size = len(kaggle.datasets[REFERENCE][1])
    resumed_from = int(gets[1][2]["Range"].removeprefix("bytes=").removesuffix("-"))
    assert 0 < resumed_from <= archive_size // 2  # what arrived before the cut was kept


def test_interrupted_fetch_never_looks_complete_and_next_run_resumes(
    kaggle, skin_types, fetch_settings, fetch_cli
):
    kaggle.fault("file", *["cut"] * 4)  # more cuts than one run's attempts
    failed = fetch_cli("fetch", "get", "skin-types")
    assert failed.exit_code == 1
    assert "failed after 4 attempts" in failed.stderr and "resumes" in failed.stderr
    assert fetched_copies("skin-types", fetch_settings) == []
    assert not (fetch_settings.home / "datasets/skin-types/v3").exists()
    part = fetch_settings.home / "datasets/skin-types/.downloads/v3.zip.part"
    part_size = part.stat().st_size
    assert 0 < part_size < len(kaggle.datasets[REFERENCE][1])
    with pytest.raises(UsageError, match=r"not fetched yet: run `skinctl fetch get skin-types`"):
        resolve_fetched("skin-types", fetch_settings)

    kaggle.log.clear()
    done = fetch_cli("fetch", "get", "skin-types", "--json")
    assert done.exit_code == 0, done.stderr
    summary = done.json()
    assert summary["version"] == "v3" and summary["cached"] is False
    assert _tree(Path(summary["path"])) == skin_types
    # kagglehub's redirect is followed, then only the missing tail is asked for.
    assert kaggle.requests_to("/files/")[-1][2]["Range"] == f"bytes={part_size}-"
    assert not part.exists()


def test_server_error_then_success_is_retried(kaggle, skin_types, fetch_settings):
    kaggle.fault("get", 500)
    kaggle.fault("download", 503)
    result = fetch_dataset(get_entry("skin-types", fetch_settings), fetch_settings, FetchRequest())
    assert _tree(result.path) == skin_types
    assert len(kaggle.requests_to("/api/v1/datasets.DatasetApiService/GetDataset")) == 2
    assert len(kaggle.requests_to("/api/v1/datasets.DatasetApiService/DownloadDataset")) == 2


def test_kaggle_unreachable_uses_the_fetched_copy_with_a_warning(kaggle, skin_types, fetch_cli):
    first = fetch_cli("fetch", "get", "skin-types", "--json")
    assert first.exit_code == 0, first.stderr
    kaggle.fault("get", *[500] * 10)  # every attempt to ask for the current version fails
    again = fetch_cli("fetch", "get", "skin-types", "--json")
    assert again.exit_code == 0, again.stderr
    assert again.json() == {**first.json(), "cached": True}  # same keys: the notice is not JSON
    assert "warning:" in again.stderr and "Using the copy fetched on" in again.stderr


def test_unknown_dataset_is_a_clear_404(kaggle, fetch_settings, fetch_cli, tmp_path):
    config = tmp_path / "skinctl.toml"
    config.write_text(
        '[datasets.ghost]\nsource = "kaggle"\nreference = "nobody/no-such-set"\n'
        'kind = "images"\nlayout = "folders"\n'
    )
    result = fetch_cli("fetch", "get", "ghost")
    assert result.exit_code == 1
    assert "Kaggle has no dataset 'nobody/no-such-set' (404)" in result.stderr
    assert "Traceback" not in result.stderr
    with pytest.raises(NotFound):
        from skinctl.config import Settings

        settings = Settings(
            home=fetch_settings.home,
            datasets={
                "ghost": {
                    "source": "kaggle",
                    "reference": "nobody/no-such-set",
                    "kind": "images",
                    "layout": "folders",
                }
            },
        )
        fetch_dataset(get_entry("ghost", settings), settings, FetchRequest())


def test_401_without_credentials_names_where_skinctl_looked(
    kaggle, skin_types, fetch_cli, tmp_path
):
    kaggle.require_auth = {"Bearer the-right-token"}
    result = fetch_cli("fetch", "get", "skin-types")
    assert result.exit_code == 2
    message = result.stderr
    assert "without credentials (401)" in message
    for place in (
        "KAGGLE_API_TOKEN",
        "KAGGLE_USERNAME/KAGGLE_KEY",
        str(tmp_path / "kaggle-config" / "kaggle.json"),
        "access_token",
    ):
        assert place in message


def test_401_with_rejected_key_names_the_source_but_never_the_secret(
    kaggle, skin_types, fetch_cli, monkeypatch, tmp_path
):
    kaggle.require_auth = {"Bearer the-right-token"}
    config_dir = tmp_path / "kaggle-config"
    config_dir.mkdir()
    (config_dir / "kaggle.json").write_text(
        json.dumps({"username": "alice", "key": "s3cr3t-key-value"})
    )
    result = fetch_cli("fetch", "get", "skin-types")
    assert result.exit_code == 2
    assert f"Kaggle rejected the credential from {config_dir / 'kaggle.json'}" in result.stderr
    assert "s3cr3t-key-value" not in result.stderr + result.stdout
    # The client did send it (basic auth), so the rejection is real, not a missing header.
    sent = kaggle.requests_to("/api/")[0][2]["Authorization"]
    assert base64.b64decode(sent.split()[1]).decode() == "alice:s3cr3t-key-value"

    monkeypatch.setenv("KAGGLE_API_TOKEN", "wrong-token")
    result = fetch_cli("fetch", "get", "skin-types")
    assert "KAGGLE_API_TOKEN environment variable" in result.stderr
    assert "wrong-token" not in result.stderr


def test_accepted_token_downloads(kaggle, skin_types, fetch_settings, monkeypatch):
    kaggle.require_auth = {"Bearer the-right-token"}
    monkeypatch.setenv("KAGGLE_API_TOKEN", "the-right-token")
    result = fetch_dataset(get_entry("skin-types", fetch_settings), fetch_settings, FetchRequest())
    assert _tree(result.path) == skin_types


def test_broken_kaggle_json_is_reported(kaggle, skin_types, fetch_settings, tmp_path):
    config_dir = tmp_path / "kaggle-config"
    config_dir.mkdir()
    (config_dir / "kaggle.json").write_text("{not json")
    with pytest.raises(CredentialsError, match="is not a valid Kaggle credential file"):
        fetch_dataset(get_entry("skin-types", fetch_settings), fetch_settings, FetchRequest())


def test_output_dir_and_progress(kaggle, skin_types, fetch_settings, tmp_path):
    target = tmp_path / "mine"
    reports: list[tuple[str, int, int | None]] = []
    result = fetch_dataset(
        get_entry("skin-types", fetch_settings),
        fetch_settings,
        FetchRequest(output_dir=target),
        lambda *args: reports.append(args),
    )
    assert result.path == target.absolute() and _tree(target) == skin_types
    # Byte stages, cumulative: the download ends at the archive's size, extraction at the files'.
    stages = {stage for stage, _done, _total in reports}
    assert stages == {"download", "extract"} and stages <= BYTE_STAGES
    for stage in stages:
        done = [completed for name, completed, _total in reports if name == stage]
        assert done == sorted(done)
        assert reports[max(i for i, r in enumerate(reports) if r[0] == stage)][1:] == (
            done[-1],
            done[-1],
        )
    assert [done for name, done, _ in reports if name == "extract"][-1] == result.bytes
    assert resolve_fetched("skin-types", fetch_settings)[0] == target.absolute()

    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("user data")
    kaggle.log.clear()
    with pytest.raises(UsageError, match="is not empty"):
        fetch_dataset(
            get_entry("skin-types", fetch_settings),
            fetch_settings,
            FetchRequest(output_dir=occupied),
        )
    assert (occupied / "keep.txt").read_text() == "user data"
    assert kaggle.log == []  # refused before asking Kaggle for anything


def test_md5_mismatch_from_kaggle_is_refused(kaggle, skin_types, fetch_settings):
    kaggle.wrong_md5 = True
    with pytest.raises(FetchError, match="MD5 does not match"):
        fetch_dataset(get_entry("skin-types", fetch_settings), fetch_settings, FetchRequest())
    assert fetched_copies("skin-types", fetch_settings) == []
