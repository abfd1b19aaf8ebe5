"""Estimated skin tone (ITA°): the formula, the six buckets, the skin mask, ingest and backfill."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select, update

from skinctl.db.models import SKIN_TONES, TrainingImage
from skinctl.ingest.imageproc import analyse_bytes, decode_reduced
from skinctl.ingest.tone import (
    TONE_METHOD,
    SkinTone,
    estimate_tone,
    ita_category,
    ita_degrees,
    lab_to_srgb,
    srgb_to_lab,
)
from tests.ingest.helpers import encode, write

# One skin-like CIELAB colour per category, and its exact ITA: arctan((L* - 50) / b*).
KNOWN = [
    ((80.0, 8.0, 10.0), SkinTone.very_light),  # 71.57°
    ((68.0, 10.0, 14.0), SkinTone.light),  # 52.13°
    ((60.0, 12.0, 16.0), SkinTone.intermediate),  # 32.01°
    ((55.0, 13.0, 18.0), SkinTone.tan),  # 15.52°
    ((45.0, 14.0, 20.0), SkinTone.brown),  # -14.04°
    ((35.0, 12.0, 20.0), SkinTone.dark),  # -36.87°
]


def lab_patch(lab: tuple[float, float, float], size=(96, 96)) -> Image.Image:
    rgb = np.clip(np.round(lab_to_srgb(np.array(lab))), 0, 255).astype(np.uint8)
    return Image.fromarray(np.tile(rgb, (size[1], size[0], 1)))


def test_tone_names_match_the_schema():
    assert tuple(tone.value for tone in SkinTone) == SKIN_TONES


def test_ita_formula_exact():
    assert ita_degrees(50.0, 10.0) == 0.0
    assert ita_degrees(60.0, 10.0) == pytest.approx(45.0, abs=1e-12)
    assert ita_degrees(40.0, 10.0) == pytest.approx(-45.0, abs=1e-12)
    assert ita_degrees(80.0, 10.0) == pytest.approx(math.degrees(math.atan(3.0)), abs=1e-12)
    with pytest.raises(ValueError):
        ita_degrees(60.0, 0.0)


@pytest.mark.parametrize(
    ("ita", "expected"),
    [
        (90.0, "very_light"),
        (55.001, "very_light"),
        (55.0, "light"),
        (41.001, "light"),
        (41.0, "intermediate"),
        (28.001, "intermediate"),
        (28.0, "tan"),
        (10.001, "tan"),
        (10.0, "brown"),
        (0.0, "brown"),
        (-30.0, "brown"),
        (-30.001, "dark"),
        (-90.0, "dark"),
    ],
)
def test_six_buckets_and_their_boundaries(ita, expected):
    assert ita_category(ita) == expected


def test_lab_conversion_round_trips_and_knows_white():
    lab = np.array([[L, a, b] for (L, a, b), _ in KNOWN])
    assert srgb_to_lab(lab_to_srgb(lab)) == pytest.approx(lab, abs=1e-6)
    assert srgb_to_lab(np.array([255, 255, 255])) == pytest.approx([100, 0, 0], abs=0.01)
    assert srgb_to_lab(np.array([0, 0, 0])) == pytest.approx([0, 0, 0], abs=0.01)


@pytest.mark.parametrize(("lab", "category"), KNOWN)
def test_known_colours_give_their_ita_and_bucket(lab, category):
    expected = ita_degrees(lab[0], lab[2])
    assert ita_category(expected) == category
    # Lossless PNG: only the rounding to 8-bit sRGB moves the angle.
    estimate = estimate_tone(lab_patch(lab))
    assert estimate is not None
    assert estimate.ita == pytest.approx(expected, abs=0.6)
    assert estimate.category == category
    assert estimate.skin_fraction == 1.0
    # Through ingest's own decode of a JPEG (YCbCr draft, chroma subsampling) too.
    facts = analyse_bytes(encode(lab_patch(lab, (400, 300)), quality=95))
    assert facts.tone is not None
    assert facts.tone.ita == pytest.approx(expected, abs=1.5)
    assert facts.tone.category == category


def with_background(skin: Image.Image, background: tuple[int, int, int], size=(400, 300)):
    canvas = Image.new("RGB", size, background)
    canvas.paste(skin, ((size[0] - skin.width) // 2, (size[1] - skin.height) // 2))
    return canvas


@pytest.mark.parametrize("background", [(255, 255, 255), (245, 245, 240), (0, 0, 0)])
@pytest.mark.parametrize(("lab", "category"), [KNOWN[0], KNOWN[3], KNOWN[5]])
def test_mask_ignores_white_wall_and_black_padding(lab, category, background):
    # A skin patch covering a quarter of the picture; the rest is background.
    photo = with_background(lab_patch(lab, (200, 150)), background)
    for image in (photo, Image.open(io.BytesIO(encode(photo, quality=92)))):
        estimate = estimate_tone(image)
        assert estimate is not None
        assert estimate.ita == pytest.approx(ita_degrees(lab[0], lab[2]), abs=1.5)
        assert estimate.category == category
        assert 0.2 < estimate.skin_fraction < 0.3


def test_roboflow_padding_bars():
    lab, category = KNOWN[1]
    photo = Image.new("RGB", (640, 640), (0, 0, 0))
    photo.paste(lab_patch(lab, (640, 420)), (0, 110))  # black bars above and below
    facts = analyse_bytes(encode(photo, quality=90))
    assert facts.tone is not None and facts.tone.category == category
    assert facts.tone.skin_fraction == pytest.approx(420 / 640, abs=0.03)


@pytest.mark.parametrize(
    "picture",
    [
        Image.new("RGB", (200, 200), (255, 255, 255)),  # a white wall
        Image.new("RGB", (200, 200), (0, 0, 0)),  # padding only
        Image.new("RGB", (200, 200), (40, 90, 200)),  # blue: not skin
        Image.new("L", (200, 200), 150),  # grayscale: no colour
    ],
)
def test_no_skin_no_tone(picture):
    assert estimate_tone(picture) is None
    assert analyse_bytes(encode(picture)).tone is None


def test_a_small_skin_speck_is_not_enough():
    photo = with_background(lab_patch(KNOWN[2][0], (20, 20)), (255, 255, 255))
    assert estimate_tone(photo) is None


def test_colour_draft_keeps_the_hash_input():
    """The YCbCr draft's Y channel is what the old grayscale draft decoded, byte for byte."""
    data = encode(with_background(lab_patch(KNOWN[2][0], (300, 200)), (250, 250, 250)))
    image = Image.open(io.BytesIO(data))
    image.draft("L", (64, 64))
    image.load()
    decoded = decode_reduced(data)
    assert decoded.colour is not None and decoded.colour.mode == "YCbCr"
    assert np.array_equal(np.asarray(decoded.gray), np.asarray(image))
    # without the tone (the API's input check): the grayscale draft alone, the same facts
    gray_only = decode_reduced(data, with_colour=False)
    assert gray_only.colour is None
    assert np.array_equal(np.asarray(gray_only.gray), np.asarray(image))
    with_tone, without = analyse_bytes(data), analyse_bytes(data, tone=False)
    assert with_tone.tone is not None and without.tone is None
    assert (without.phash, without.quality_flags, without.width, without.height) == (
        with_tone.phash,
        with_tone.quality_flags,
        with_tone.width,
        with_tone.height,
    )


def test_ingest_stores_tone_and_backfill_fills_old_rows(cli, engine, tmp_path):
    root = tmp_path / "set"
    for number, ((lab, _category), background) in enumerate(
        zip(KNOWN, [(255, 255, 255), (0, 0, 0)] * 3, strict=True)
    ):
        photo = with_background(lab_patch(lab, (240, 180)), background)
        write(root / "train" / "face" / f"face_{number}.jpg", encode(photo, quality=92))
    write(root / "train" / "face" / "wall.jpg", encode(Image.new("RGB", (200, 200), "white")))
    result = cli("ingest", "images", str(root), "--dataset", "tones", "--workers", "1", "--json")
    assert result.exit_code == 0, result.stderr
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                TrainingImage.local_path,
                TrainingImage.skin_tone,
                TrainingImage.skin_tone_ita,
                TrainingImage.skin_tone_method,
            ).order_by(TrainingImage.local_path)
        ).all()
    stored = {row.local_path.rsplit("/", 1)[1]: row for row in rows}
    for number, (lab, category) in enumerate(KNOWN):
        row = stored[f"face_{number}.jpg"]
        assert row.skin_tone == category
        assert row.skin_tone_ita == pytest.approx(ita_degrees(lab[0], lab[2]), abs=1.5)
    assert stored["wall.jpg"].skin_tone is None
    assert {row.skin_tone_method for row in rows} == {TONE_METHOD}

    # Rows stored before tones existed: the backfill estimates them again, the same way.
    with engine.begin() as connection:
        connection.execute(
            update(TrainingImage).values(skin_tone=None, skin_tone_ita=None, skin_tone_method=None)
        )
    stats = cli("stats", "--json").json()
    assert stats["skin_tones"] == [{"tone": "not_estimated", "images": 7}]
    result = cli("images", "tone", "--json")
    assert result.exit_code == 0, result.stderr
    summary = result.json()
    assert list(summary) == ["method", "images", "estimated", "no_skin", "unreadable", "seconds"]
    assert (summary["images"], summary["estimated"], summary["no_skin"]) == (7, 6, 1)
    again = cli("images", "tone", "--json").json()
    assert again["images"] == 0  # resumable: done rows are not redone
    with engine.connect() as connection:
        after = dict(
            connection.execute(select(TrainingImage.local_path, TrainingImage.skin_tone)).all()
        )
    assert after == {row.local_path: row.skin_tone for row in rows}
    stats = cli("stats", "--json").json()
    assert stats["skin_tones"] == [{"tone": tone, "images": 1} for tone in (*SKIN_TONES, "no_skin")]
    human = cli("stats")
    assert "estimated skin tone" in human.stdout and "very_light" in human.stdout


def test_dedup_show_carries_the_tone(cli, engine, tmp_path):
    root = tmp_path / "set"
    photo = with_background(lab_patch(KNOWN[4][0], (240, 180)), (0, 0, 0))
    write(root / "train" / "face" / "a.jpg", encode(photo, quality=92))
    assert cli("ingest", "images", str(root), "--dataset", "one", "--workers", "1").exit_code == 0
    with engine.connect() as connection:
        image_id = connection.execute(select(TrainingImage.id)).scalar_one()
    shown = cli("dedup", "show", str(image_id), "--json")
    assert shown.exit_code == 0, shown.stderr
    assert shown.json()["skin_tone"] == "brown"
    assert shown.json()["skin_tone_ita"] == pytest.approx(-14.0, abs=1.5)
    human = cli("dedup", "show", str(image_id))
    assert "estimated skin tone: brown" in human.stdout
