"""The URL <-> key mapping both backends share."""

from __future__ import annotations

import pytest

from skinctl.storage import content_key, open_storage
from skinctl.storage.gcs import GCSStorage


@pytest.mark.parametrize("store", ["file:///srv/images", "gs://bucket/prefix"])
def test_url_and_key_round_trip_and_foreign_urls_are_refused(store: str) -> None:
    storage = GCSStorage(store) if store.startswith("gs://") else open_storage(store)
    key = content_key("ab" + "0" * 62, "JPG")
    assert key == "ab/ab" + "0" * 62 + ".jpg"
    assert storage.key_for(storage.url_for(key)) == key
    with pytest.raises(ValueError, match="is not in"):
        storage.key_for(
            "gs://elsewhere/ab/x.jpg" if store.startswith("file") else "file:///srv/x.jpg"
        )
