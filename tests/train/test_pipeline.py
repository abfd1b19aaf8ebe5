"""The decode path every image takes (training, scoring, predict)."""

from __future__ import annotations

import numpy as np


def test_exif_rotated_jpeg_is_decoded_upright():
    import io

    from PIL import Image

    from skinctl.train.pipeline import decode_files

    image = Image.new("RGB", (40, 20), (255, 0, 0))
    image.paste((0, 0, 255), (0, 0, 20, 20))  # left half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: viewers turn it 90 degrees clockwise
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif.tobytes(), quality=95)
    upright = decode_files([buffer.getvalue()], 20)[0]
    # after the 90 degree clockwise turn, the blue (formerly left) half is on top
    assert upright[2, 10, 2] > 200 and upright[17, 10, 0] > 200


def test_large_jpeg_reduced_decode_matches_full_decode():
    import io

    from PIL import Image

    from skinctl.train.pipeline import decode_files

    rng = np.random.default_rng(0)
    small = rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)
    big = Image.fromarray(small).resize(
        (640, 480), Image.NEAREST
    )  # smooth blocks: resizing is stable
    jpeg, png = io.BytesIO(), io.BytesIO()
    big.save(jpeg, format="JPEG", quality=95)
    big.save(png, format="PNG")
    from_jpeg, from_png = decode_files([jpeg.getvalue(), png.getvalue()], 64)
    assert from_jpeg.shape == from_png.shape == (64, 64, 3)
    assert np.abs(from_jpeg - from_png).mean() < 6  # 1/4-scale JPEG decode vs full PNG decode
