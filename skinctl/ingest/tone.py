"""Estimated skin tone of a photo: the individual typology angle (ITA°) over its skin pixels.

ITA° = arctan((L* - 50) / b*) * 180 / pi, with L* and b* in CIELAB (D65 white). Dermatology
datasets use it as a proxy for Fitzpatrick type; here it estimates the colour of the skin in a
photo taken under unknown light and camera settings. It is NOT a person's Fitzpatrick type.

Method (`TONE_METHOD`), on the reduced colour decode ingest already does:
1. Skin mask: a pixel counts as skin when its chroma lies in the classic YCbCr skin box
   (Chai & Ngan 1999: 77 <= Cb <= 127 and 133 <= Cr <= 173), its luma is neither near black
   nor blown out (20 <= Y <= 250), and its b* is positive (ITA is defined for b* > 0). Neutral
   backgrounds - a white wall, black Roboflow padding, grey - have Cr near 128 and drop out.
   Warm backgrounds (a beige wall, wood) can pass: the estimate is a proxy, not a segmentation.
2. When fewer than `MIN_SKIN_FRACTION` of the pixels (or fewer than `MIN_SKIN_PIXELS`) are
   skin, there is no estimate (None): better no tone than the tone of a wall.
3. L* and b* are the medians over the skin pixels (robust to highlights and shadows); the
   angle is computed from them and bucketed into the six standard categories.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
from PIL import Image

TONE_METHOD = "ita-ycbcrmask-median-v1"
MIN_SKIN_FRACTION = 0.05
MIN_SKIN_PIXELS = 50
TONE_SIDE = 64  # colour images are reduced to about this side before the Lab conversion

# Chai & Ngan's skin box in YCbCr (JPEG's full-range YCbCr, as Pillow decodes it).
CB_RANGE = (77, 127)
CR_RANGE = (133, 173)
Y_RANGE = (20, 250)


class SkinTone(StrEnum):
    """The six standard ITA categories, lightest first."""

    very_light = "very_light"
    light = "light"
    intermediate = "intermediate"
    tan = "tan"
    brown = "brown"
    dark = "dark"


# (category, lower bound): ITA above the bound (brown: at or above) falls in the category.
ITA_BOUNDS: tuple[tuple[SkinTone, float], ...] = (
    (SkinTone.very_light, 55.0),
    (SkinTone.light, 41.0),
    (SkinTone.intermediate, 28.0),
    (SkinTone.tan, 10.0),
)
BROWN_FLOOR = -30.0


@dataclass(frozen=True)
class ToneEstimate:
    ita: float  # degrees
    category: SkinTone
    skin_fraction: float  # share of the decoded pixels the mask kept


def ita_degrees(lightness: float, b_star: float) -> float:
    """ITA° from L* and b* (b* must be positive)."""
    if b_star <= 0:
        raise ValueError(f"ITA needs b* > 0, got {b_star}")
    return math.degrees(math.atan((lightness - 50.0) / b_star))


def ita_category(ita: float) -> SkinTone:
    """Very light > 55°, light 41-55, intermediate 28-41, tan 10-28, brown -30-10, dark < -30.

    A value on a boundary goes to the darker category (55° is light), except -30°, which is
    brown (dark is strictly below -30°).
    """
    for category, lower in ITA_BOUNDS:
        if ita > lower:
            return category
    return SkinTone.brown if ita >= BROWN_FLOOR else SkinTone.dark


# sRGB (D65) to XYZ, IEC 61966-2-1.
_RGB_TO_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)
_D65_WHITE = np.array([0.95047, 1.0, 1.08883])


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) sRGB values 0..255 to CIELAB (D65); returns (..., 3) floats L*, a*, b*."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = linear @ _RGB_TO_XYZ.T / _D65_WHITE
    epsilon = 216 / 24389
    kappa = 24389 / 27
    f = np.where(xyz > epsilon, np.cbrt(xyz), (kappa * xyz + 16) / 116)
    lightness = 116 * f[..., 1] - 16
    a_star = 500 * (f[..., 0] - f[..., 1])
    b_star = 200 * (f[..., 1] - f[..., 2])
    return np.stack([lightness, a_star, b_star], axis=-1)


def lab_to_srgb(lab: np.ndarray) -> np.ndarray:
    """The inverse of `srgb_to_lab`, unclipped floats 0..255 (tests make known colours with it)."""
    lab = np.asarray(lab, dtype=np.float64)
    fy = (lab[..., 0] + 16) / 116
    fx = fy + lab[..., 1] / 500
    fz = fy - lab[..., 2] / 200
    epsilon = 216 / 24389
    kappa = 24389 / 27
    f = np.stack([fx, fy, fz], axis=-1)
    xyz = np.where(f**3 > epsilon, f**3, (116 * f - 16) / kappa) * _D65_WHITE
    linear = xyz @ np.linalg.inv(_RGB_TO_XYZ).T
    linear = np.clip(linear, 0, None)
    c = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)
    return c * 255.0


# The fast path ingest takes: 8-bit sRGB -> linear by table, and only the Y and Z rows of the
# matrix (L* needs Y, b* needs Y and Z), in float32. Same figures as `srgb_to_lab` to ~1e-4.
_LINEAR_TABLE = np.where(
    np.arange(256) / 255.0 <= 0.04045,
    np.arange(256) / 255.0 / 12.92,
    ((np.arange(256) / 255.0 + 0.055) / 1.055) ** 2.4,
).astype(np.float32)
_Y_ROW = (_RGB_TO_XYZ[1] / _D65_WHITE[1]).astype(np.float32)
_Z_ROW = (_RGB_TO_XYZ[2] / _D65_WHITE[2]).astype(np.float32)


def _lightness_and_b(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3) uint8 sRGB pixels -> (L*, b*) float32 arrays."""
    linear = _LINEAR_TABLE[rgb]
    epsilon, kappa = 216 / 24389, 24389 / 27
    y, z = linear @ _Y_ROW, linear @ _Z_ROW
    fy = np.where(y > epsilon, np.cbrt(y), (kappa * y + 16) / 116)
    fz = np.where(z > epsilon, np.cbrt(z), (kappa * z + 16) / 116)
    return 116 * fy - 16, 200 * (fy - fz)


def _reduce(image: Image.Image) -> Image.Image:
    factor = max(image.width, image.height) // TONE_SIDE
    return image.reduce(factor) if factor >= 2 else image


def estimate_tone(image: Image.Image) -> ToneEstimate | None:
    """ITA tone of a colour image (RGB, RGBA, P, or a JPEG's YCbCr decode); None if no skin.

    Grayscale images carry no colour and get None.
    """
    if image.mode in ("L", "LA", "1", "I", "F", "I;16"):
        return None
    image = _reduce(image)
    if image.mode == "YCbCr":
        ycbcr = np.asarray(image)
        rgb = np.asarray(image.convert("RGB"))
    else:
        rgb_image = image.convert("RGB")
        rgb = np.asarray(rgb_image)
        ycbcr = np.asarray(rgb_image.convert("YCbCr"))
    luma, cb, cr = ycbcr[..., 0], ycbcr[..., 1], ycbcr[..., 2]
    chroma_skin = (
        (cb >= CB_RANGE[0])
        & (cb <= CB_RANGE[1])
        & (cr >= CR_RANGE[0])
        & (cr <= CR_RANGE[1])
        & (luma >= Y_RANGE[0])
        & (luma <= Y_RANGE[1])
    )
    total = chroma_skin.size
    if not chroma_skin.any():
        return None
    lightness_all, b_all = _lightness_and_b(rgb[chroma_skin])
    warm = b_all > 0
    count = int(warm.sum())
    if count < MIN_SKIN_PIXELS or count / total < MIN_SKIN_FRACTION:
        return None
    lightness = float(np.median(lightness_all[warm]))
    b_star = float(np.median(b_all[warm]))
    ita = ita_degrees(lightness, b_star)
    return ToneEstimate(ita=ita, category=ita_category(ita), skin_fraction=count / total)


def tone_columns(estimate: ToneEstimate | None) -> dict[str, Any]:
    """The `ml_training_images` tone columns for an estimate (None: computed, no skin found)."""
    return {
        "skin_tone_ita": round(estimate.ita, 2) if estimate else None,
        "skin_tone": estimate.category.value if estimate else None,
        "skin_tone_method": TONE_METHOD,
    }
