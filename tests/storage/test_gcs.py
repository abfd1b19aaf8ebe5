"""GCSStorage: the real google-cloud-storage client against gcp-storage-emulator."""

from __future__ import annotations

import hashlib

import pytest

from skinctl.errors import StorageError
from skinctl.storage import open_storage
from skinctl.storage.base import content_key
from skinctl.storage.bulk import put_many
from skinctl.storage.gcs import GCSStorage
from tests.storage.conftest import image_bytes


def _key(data: bytes) -> str:
    return content_key(hashlib.sha256(data).hexdigest(), "jpg")


def test_put_get_exists_iter_delete(gcs_url):
    store = open_storage(gcs_url)
    assert isinstance(store, GCSStorage)
    data = image_bytes(1)
    key = _key(data)
    assert store.url_for(key) == f"{gcs_url}/{key}"
    assert store.key_for(store.url_for(key)) == key
    assert not store.exists(key)

    assert store.put(key, data) is True
    assert store.exists(key) and store.get(key) == data
    assert store.put(key, data) is False  # same MD5 already there: no upload
    assert list(store.iter_keys()) == [key]

    store.delete(key)
    store.delete(key)  # deleting twice is fine
    assert not store.exists(key) and list(store.iter_keys()) == []
    with pytest.raises(StorageError, match=f"Stored object {gcs_url}/{key} is missing"):
        store.get(key)


def test_put_replaces_an_object_whose_bytes_differ(gcs):
    data = image_bytes(2)
    key = _key(data)
    gcs.put(key, b"damaged bytes")
    assert gcs.put(key, data) is True
    assert gcs.get(key) == data


def test_prefixes_keep_stores_apart(gcs_url):
    bucket_root = GCSStorage(gcs_url.rsplit("/", 1)[0])
    other = GCSStorage(gcs_url.rsplit("/", 1)[0] + "/other")
    store = GCSStorage(gcs_url)
    store.put("aa/one.jpg", b"1")
    other.put("aa/two.jpg", b"2")
    assert list(store.iter_keys()) == ["aa/one.jpg"]
    assert list(other.iter_keys()) == ["aa/two.jpg"]
    assert sorted(bucket_root.iter_keys()) == ["images/aa/one.jpg", "other/aa/two.jpg"]
    with pytest.raises(ValueError):
        store.key_for(other.url_for("aa/two.jpg"))


def test_put_many_uploads_from_a_thread_pool_and_skips_existing(gcs):
    items = [(_key(image_bytes(i)), image_bytes(i)) for i in range(24)]
    gcs.put(*items[0])
    seen = []
    outcomes = put_many(gcs, items, workers=6, on_done=seen.append)
    assert [o.key for o in outcomes] == [key for key, _ in items]  # input order
    assert [o.uploaded for o in outcomes] == [False] + [True] * 23
    assert all(o.error is None and o.url == gcs.url_for(o.key) for o in outcomes)
    assert len(seen) == 24
    assert sorted(gcs.iter_keys()) == sorted(key for key, _ in items)
    again = put_many(gcs, items, workers=6)
    assert not any(o.uploaded for o in again)


def test_put_many_reports_a_bad_item_and_stores_the_rest(gcs):
    items = [("aa/good.jpg", b"good"), ("../escape.jpg", b"bad"), ("bb/good.jpg", b"fine")]
    outcomes = put_many(gcs, items, workers=2)
    assert [o.error is None for o in outcomes] == [True, False, True]
    assert "leaves the store" in outcomes[1].error
    assert sorted(gcs.iter_keys()) == ["aa/good.jpg", "bb/good.jpg"]


def test_missing_bucket_is_a_clear_error(gcs_url):
    store = GCSStorage("gs://skinctl-no-such-bucket-zz/images")
    with pytest.raises(StorageError, match="Bucket 'skinctl-no-such-bucket-zz' does not exist"):
        store.put("aa/x.jpg", b"x")


def test_no_credentials_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing-key.json"))
    store = GCSStorage("gs://some-bucket/images")
    with pytest.raises(
        StorageError, match="No usable Google Cloud credentials for gs://some-bucket/images"
    ) as error:
        store.exists("aa/x.jpg")
    assert "GOOGLE_APPLICATION_CREDENTIALS" in error.value.hint


def test_bad_urls():
    from skinctl.errors import ConfigError

    with pytest.raises(ConfigError, match="no bucket"):
        GCSStorage("gs:///prefix")
    with pytest.raises(ConfigError, match="Unsupported storage URL"):
        open_storage("s3://bucket/x")
