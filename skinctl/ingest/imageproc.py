"""Per-image work that every ingest must do, on ONE decode path.

Hashes computed from a full decode and from a reduced decode of the same image differ by a
few bits, so every place that computes a perceptual hash (ingest, dedup queries, predict)
calls `analyse_bytes` / `perceptual_hash` here, and rows record `PHASH_METHOD`.

The decode is reduced where the format allows it (JPEG `draft`: the decoder scales by up to
1/8 and still reads the whole stream, so a truncated file raises), converted to 8-bit
grayscale, and turned upright by the EXIF orientation.

Colour JPEGs are drafted as YCbCr, not L: libjpeg's grayscale output IS the Y channel (checked
byte for byte on 400 real photos), so the hash input is unchanged, and the same decode gives
the colour the skin-tone estimate (`tone.py`) needs at no second decode.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass, field

import imagehash
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from skinctl.ingest.tone import ToneEstimate, estimate_tone

PHASH_METHOD = "phash64-draftL64-v1"
DRAFT_SIZE = (64, 64)
DEFAULT_MAX_PIXELS = 80_000_000  # refuse decompression bombs before decoding
# MPO: phone-camera JPEGs with extra pictures appended; Pillow names them MPO, the file is a JPEG.
SUPPORTED_FORMATS = {
    "JPEG": "jpg",
    "MPO": "jpg",
    "PNG": "png",
    "WEBP": "webp",
    "BMP": "bmp",
    "TIFF": "tif",
    "GIF": "gif",
}
SUPPORTED_MODES = {"1", "L", "LA", "P", "PA", "RGB", "RGBA"}

# Quality thresholds on the reduced grayscale image (0..255).
DARK_MEAN = 40.0
BRIGHT_MEAN = 215.0
NEAR_CONSTANT_STD = 6.0
BLURRY_LAPLACIAN_VAR = 30.0
ODD_ASPECT = 3.0
SMALL_SIDE = 64

# Pillow warns (and at 2x raises) on huge images; we check the size ourselves, first.
Image.MAX_IMAGE_PIXELS = None
# Pillow's warnings while decoding (corrupt EXIF, odd MPO) say nothing a caller acts on; errors
# still raise. A filter set once: entering catch_warnings per image cost more than the hash.
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")


class ImageRejected(Exception):
    """The bytes cannot be ingested. `reason` is a stable code; `detail` says why for people."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class ImageFacts:
    sha256: str
    byte_size: int
    format: str  # Pillow's name: JPEG, PNG, ...
    ext: str  # the extension the stored object gets, from the real format
    width: int  # upright (after EXIF orientation)
    height: int
    mode: str
    phash: int  # signed 64-bit, fits BIGINT
    quality_flags: list[str] = field(default_factory=list)
    tone: ToneEstimate | None = None  # None: grayscale, or too little skin to estimate


def to_signed64(value: int) -> int:
    return value - (1 << 64) if value >= (1 << 63) else value


def to_unsigned64(value: int) -> int:
    return value + (1 << 64) if value < 0 else value


def hamming(a: int, b: int) -> int:
    return (to_unsigned64(a) ^ to_unsigned64(b)).bit_count()


def _open(data: bytes) -> Image.Image:
    try:
        return Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ImageRejected("not_an_image", "not an image file Pillow can read") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageRejected("corrupt", f"unreadable image header ({error})") from None


@dataclass(frozen=True)
class Decoded:
    format: str
    mode: str  # the stored pixel mode, before the grayscale conversion
    width: int  # upright
    height: int
    gray: Image.Image  # upright, reduced, 8-bit grayscale
    colour: Image.Image | None  # upright, reduced where the format allows; None if grayscale


def decode_reduced(
    data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, *, with_colour: bool = True
) -> Decoded:
    """Validate and decode on the one reduced path; ImageRejected says why not.

    `with_colour=False` decodes a JPEG as grayscale only (no tone): the same gray pixels, so the same
    hashes and flags, for callers that need no skin tone (the API's input check)."""
    image = _open(data)
    if image.format not in SUPPORTED_FORMATS:
        raise ImageRejected("unsupported_format", f"{image.format} images are not supported")
    width, height = image.size
    if width <= 0 or height <= 0:
        raise ImageRejected("corrupt", f"impossible size {width}x{height}")
    if width * height > max_pixels:
        raise ImageRejected(
            "too_many_pixels",
            f"{width}x{height} = {width * height:,} pixels is over the limit of {max_pixels:,}",
        )
    mode = image.mode
    if mode not in SUPPORTED_MODES:
        raise ImageRejected(
            "unsupported_mode",
            f"pixel mode {mode} (e.g. CMYK or 16-bit) is not supported; convert it to 8-bit RGB",
        )
    orientation = image.getexif().get(0x0112, 1)
    try:
        if image.format in ("JPEG", "MPO"):
            image.draft("YCbCr" if with_colour else "L", DRAFT_SIZE)  # a grayscale JPEG stays L
        image.load()
    except (OSError, SyntaxError, ValueError) as error:
        text = str(error)
        reason = "truncated" if "truncated" in text else "corrupt"
        raise ImageRejected(reason, f"decoding failed: {text}") from None
    upright = ImageOps.exif_transpose(image) if orientation != 1 else image
    if not with_colour:
        gray = upright if upright.mode == "L" else upright.convert("L")
        if orientation in (5, 6, 7, 8):
            width, height = height, width
        return Decoded(image.format, mode, width, height, gray, None)
    if upright.mode == "L":
        gray, colour = upright, None
    elif upright.mode == "YCbCr":
        gray, colour = upright.getchannel(0), upright
    else:
        gray = upright.convert("L")
        colour = None if upright.mode in ("1", "LA") else upright
    if orientation in (5, 6, 7, 8):  # these orientations swap the sides
        width, height = height, width
    return Decoded(image.format, mode, width, height, gray, colour)


# imagehash.phash's algorithm (resize to 32x32 with Lanczos, 2-D DCT-II, the 8x8 lowest
# frequencies against their median) with the DCT as two small matrix products instead of
# scipy's full transform: the same bits (checked on 4,413 real photos), half the time.
_PHASH_SIZE = 32
_DCT_ROWS = 2 * np.cos(
    np.pi * np.arange(8)[:, None] * (2 * np.arange(_PHASH_SIZE)[None, :] + 1) / (2 * _PHASH_SIZE)
)


def perceptual_hash(gray: Image.Image) -> int:
    """64-bit DCT hash of the reduced grayscale image, as a signed BIGINT."""
    pixels = np.asarray(
        gray.resize((_PHASH_SIZE, _PHASH_SIZE), Image.Resampling.LANCZOS), dtype=np.float64
    )
    low = (_DCT_ROWS @ pixels @ _DCT_ROWS.T).ravel()
    middle = np.sort(low)[31:33]  # np.median of 64 values, without its overhead
    bits = low > (middle[0] + middle[1]) / 2
    return to_signed64(int(np.packbits(bits).view(">u8")[0]))


def perceptual_hash_imagehash(gray: Image.Image) -> int:
    """The same hash computed by imagehash (the reference `perceptual_hash` must match)."""
    return to_signed64(int(str(imagehash.phash(gray, hash_size=8)), 16))


def quality_flags(gray: Image.Image, width: int, height: int) -> list[str]:
    pixels = np.asarray(gray, dtype=np.float32)
    flags = []
    mean = float(pixels.mean())
    std = float(pixels.std())
    if std < NEAR_CONSTANT_STD:
        flags.append("near_constant")
    if mean < DARK_MEAN:
        flags.append("dark")
    elif mean > BRIGHT_MEAN:
        flags.append("bright")
    if pixels.shape[0] >= 3 and pixels.shape[1] >= 3 and std >= NEAR_CONSTANT_STD:
        laplacian = (
            pixels[:-2, 1:-1]
            + pixels[2:, 1:-1]
            + pixels[1:-1, :-2]
            + pixels[1:-1, 2:]
            - 4 * pixels[1:-1, 1:-1]
        )
        if float(laplacian.var()) < BLURRY_LAPLACIAN_VAR:
            flags.append("blurry")
    if max(width, height) / max(1, min(width, height)) > ODD_ASPECT:
        flags.append("odd_aspect")
    if min(width, height) < SMALL_SIDE:
        flags.append("small")
    return flags


def analyse_bytes(
    data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, *, tone: bool = True
) -> ImageFacts:
    """Validate, hash and measure one image's bytes; ImageRejected says why not. `tone=False`
    skips the skin-tone estimate (and the colour decode it needs)."""
    if not data:
        raise ImageRejected("empty", "zero-byte file")
    sha256 = hashlib.sha256(data).hexdigest()
    decoded = decode_reduced(data, max_pixels, with_colour=tone)
    return ImageFacts(
        sha256=sha256,
        byte_size=len(data),
        format=decoded.format,
        ext=SUPPORTED_FORMATS[decoded.format],
        width=decoded.width,
        height=decoded.height,
        mode=decoded.mode,
        phash=perceptual_hash(decoded.gray),
        quality_flags=quality_flags(decoded.gray, decoded.width, decoded.height),
        tone=estimate_tone(decoded.colour) if decoded.colour is not None else None,
    )
