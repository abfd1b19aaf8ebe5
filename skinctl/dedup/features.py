"""Per-image local features for near-duplicate detection: ORB keypoints of the upright image,
and of its mirror image, on one decode path.

Why local features: the copies this must find (Roboflow augmentations) are re-cropped, turned
by small or right angles, mirrored and padded with black bars; a global 64-bit pHash moves by
~24 bits under that, about as far as unrelated photos. ORB keypoints survive crops and
rotations; mirroring is covered by also describing the mirror image.

Decode path (`FEATURE_METHOD` records it): JPEG draft to >= `FEATURE_SIDE` px, 8-bit gray,
EXIF upright (as `skinctl.ingest.imageproc`), then downscaled to fit `FEATURE_SIDE`. It
differs from the 64 px pHash decode on purpose: keypoints need more pixels than a hash.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import cv2

FEATURE_METHOD = "orb400-gray320-v1"
FEATURE_SIDE = 320
N_FEATURES = 400
# Near-black padding (Roboflow's fill) is masked out, eroded so the padding edge gives no corners.
PADDING_LEVEL = 12
PADDING_ERODE = 9

# Candidate tokens: a few disjoint bit ranges of each ORB descriptor. Two matching descriptors
# agree on a given 28-bit range often enough that copies share several tokens, while
# unrelated images rarely do.
TOKEN_BITS = 28
TOKEN_TABLES = 4
TOKEN_KEYPOINTS = N_FEATURES  # tokens from the strongest N keypoints


@dataclass(frozen=True)
class ImageFeatures:
    """Keypoints (x, y in the feature image) and 32-byte ORB descriptors, strongest first,
    for the image and for its mirror image (x flipped)."""

    width: int
    height: int
    points: np.ndarray  # float32 (n, 2)
    descriptors: np.ndarray  # uint8 (n, 32)
    mirror_points: np.ndarray
    mirror_descriptors: np.ndarray

    def orientation(self, mirrored: bool) -> tuple[np.ndarray, np.ndarray]:
        return (
            (self.mirror_points, self.mirror_descriptors)
            if mirrored
            else (self.points, self.descriptors)
        )


def decode_gray(data: bytes, side: int = FEATURE_SIDE) -> np.ndarray:
    """The feature decode: upright 8-bit gray, longest side <= `side` (raises on bad data)."""
    from PIL import Image, ImageOps

    image = Image.open(io.BytesIO(data))
    if image.format == "JPEG":
        image.draft("L", (side, side))
    image.load()
    image = ImageOps.exif_transpose(image)
    gray = image if image.mode == "L" else image.convert("L")
    if max(gray.size) > side:
        gray.thumbnail((side, side))
    return np.asarray(gray, dtype=np.uint8)


_orb: cv2.ORB | None = None


def _detector() -> cv2.ORB:
    global _orb
    if _orb is None:
        import cv2

        cv2.setNumThreads(1)  # callers parallelise with processes
        _orb = cv2.ORB.create(
            nfeatures=N_FEATURES, fastThreshold=10, edgeThreshold=15, patchSize=15
        )
    return _orb


def _describe(gray: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keypoints, descriptors = _detector().detectAndCompute(gray, mask)
    if descriptors is None or not keypoints:
        return np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8)
    order = np.argsort([-k.response for k in keypoints], kind="stable")
    points = np.array([keypoints[i].pt for i in order], dtype=np.float32).reshape(-1, 2)
    return points, np.ascontiguousarray(descriptors[order])


def extract(gray: np.ndarray) -> ImageFeatures:
    """ORB features of an upright gray image (any size; `decode_gray` gives the standard one)."""
    import cv2

    gray = np.ascontiguousarray(gray, dtype=np.uint8)
    mask = (cv2.medianBlur(gray, 5) > PADDING_LEVEL).astype(np.uint8) * 255
    mask = cv2.erode(mask, np.ones((PADDING_ERODE, PADDING_ERODE), np.uint8))
    points, descriptors = _describe(gray, mask)
    mirror = np.ascontiguousarray(gray[:, ::-1])
    mirror_points, mirror_descriptors = _describe(mirror, np.ascontiguousarray(mask[:, ::-1]))
    height, width = gray.shape
    return ImageFeatures(width, height, points, descriptors, mirror_points, mirror_descriptors)


def features_from_bytes(data: bytes) -> ImageFeatures:
    """Decode and describe one image's bytes: what ingest workers may call per image."""
    return extract(decode_gray(data))


def tokens(descriptors: np.ndarray, keypoints: int = TOKEN_KEYPOINTS) -> np.ndarray:
    """Distinct int32 tokens: TOKEN_TABLES disjoint TOKEN_BITS-bit ranges of each descriptor,
    each tagged with its table number in the top bits."""
    descriptors = descriptors[:keypoints]
    if len(descriptors) == 0:
        return np.zeros(0, np.int32)
    bits = np.unpackbits(descriptors, axis=1)  # (n, 256)
    weights = (1 << np.arange(TOKEN_BITS - 1, -1, -1)).astype(np.int64)
    parts = []
    for table in range(TOKEN_TABLES):
        chunk = bits[:, table * TOKEN_BITS : (table + 1) * TOKEN_BITS].astype(np.int64)
        parts.append(chunk @ weights + (table << TOKEN_BITS))
    return np.unique(np.concatenate(parts)).astype(np.int32)


# --- storage as bytes (the image_dedup_features table) ----------------------------------------


def pack_points(points: np.ndarray) -> bytes:
    return np.asarray(points, dtype="<f4").tobytes()


def unpack_points(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<f4").reshape(-1, 2)


def pack_descriptors(descriptors: np.ndarray) -> bytes:
    return np.asarray(descriptors, dtype=np.uint8).tobytes()


def unpack_descriptors(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=np.uint8).reshape(-1, 32)


def unpack_tokens(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<i4").astype(np.int32)


def to_row(image_id: int, features: ImageFeatures) -> dict:
    """The image_dedup_features row of one image."""
    return {
        "image_id": image_id,
        "method": FEATURE_METHOD,
        "width": features.width,
        "height": features.height,
        "keypoints": pack_points(features.points),
        "descriptors": pack_descriptors(features.descriptors),
        "mirror_keypoints": pack_points(features.mirror_points),
        "mirror_descriptors": pack_descriptors(features.mirror_descriptors),
        "tokens": tokens(features.descriptors).astype("<i4").tobytes(),
    }


def from_row(row) -> ImageFeatures:  # noqa: ANN001 - a Row or mapping with the columns above
    return ImageFeatures(
        width=row.width,
        height=row.height,
        points=unpack_points(row.keypoints),
        descriptors=unpack_descriptors(row.descriptors),
        mirror_points=unpack_points(row.mirror_keypoints),
        mirror_descriptors=unpack_descriptors(row.mirror_descriptors),
    )
