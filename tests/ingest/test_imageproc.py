"""The one decode path: the fast pHash equals imagehash's, EXIF orientation is applied."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from skinctl.ingest.imageproc import (
    analyse_bytes,
    decode_reduced,
    perceptual_hash,
    perceptual_hash_imagehash,
)
from tests.conftest import shared_data
from tests.ingest.helpers import draw, encode


@pytest.mark.parametrize("kind", ["spots", "stripes", "rings"])
def test_fast_phash_matches_imagehash(kind):
    for seed in range(20):
        gray = decode_reduced(encode(draw(kind, seed, (320, 240)))).gray
        assert perceptual_hash(gray) == perceptual_hash_imagehash(gray)


@pytest.mark.realdata
def test_fast_phash_matches_imagehash_on_real_photos():
    files = sorted(shared_data("skin_conditions").rglob("*.jpg"))
    for path in files:
        gray = decode_reduced(path.read_bytes()).gray
        assert perceptual_hash(gray) == perceptual_hash_imagehash(gray), path


def test_exif_orientation_swaps_sides():
    image = draw("spots", 1, (200, 100))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif.tobytes())
    facts = analyse_bytes(buffer.getvalue())
    assert (facts.width, facts.height, facts.format, facts.ext) == (100, 200, "JPEG", "jpg")
