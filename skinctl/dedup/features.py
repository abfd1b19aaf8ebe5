"""Per-image local features for near-duplicate detection: ORB keypoints of the upright image,
and of its mirror image, on one decode path.

Why local features: the copies this must find (Roboflow augmentations) are re-cropped, turned
by small or right angles, mirrored and padded with black bars; a global 64-bit pHash moves by
~24 bits under that, about as far as unrelated photos. ORB keypoints survive crops and
rotations; mirroring is covered by also describing the mirror image.

Decode path (the spec's `method` records it): JPEG draft to >= `side` px, 8-bit gray, EXIF
upright (as `skinctl.ingest.imageproc`), then downscaled to fit `side`. It differs from the
64 px pHash decode on purpose: keypoints need more pixels than a hash.

Three specs: `V1` (orb400-gray320-v1: 400 keypoints at 320 px, 8 pyramid levels, float points
and stored tokens, ~40 KB a row), `V2` (orb128-gray224-l3-v2: 128 keypoints at 224 px over 3
pyramid levels, which is what the Roboflow copies need since they keep their scale; points as
int16 eighths of a pixel; tokens recomputed from the descriptors instead of stored: ~9 KB a
row, and about 3x cheaper to extract) and `V3` (the default, orb128-gray160-l2-v3: 128
keypoints at 160 px, the size libjpeg decodes a 640 px JPEG to directly (draft 1/4, no
resize), over 2 pyramid levels: the decode and the detection cost about two thirds of v2's; the
coarser corners repeat at least as well across the copies (skin_types recall 0.988 against
0.979 with v2's pair check at 3 levels; 2 levels save another 6% of the feature time for
0.003 of recall)).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np

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


@dataclass(frozen=True)
class FeatureSpec:
    """One feature method: the decode side, how many keypoints (strongest first) and ORB's
    pyramid depth. (Tried and dropped for v2: spreading keypoints over a grid cost recall,
    0.87 against 0.96 at 160 keypoints: the strongest corners are the repeatable ones.)"""

    method: str
    side: int
    n_features: int
    n_levels: int = 8
    # The mirror image's descriptors at the mirrored keypoints (angle 180 - a) instead of a
    # second detection: the same descriptors ORB finds there, for 60% of the cost.
    mirror_keypoints: bool = False


V1 = FeatureSpec(FEATURE_METHOD, FEATURE_SIDE, N_FEATURES)
V2 = FeatureSpec(
    "orb128-gray224-l3-v2", side=224, n_features=128, n_levels=3, mirror_keypoints=True
)
V3 = FeatureSpec(
    "orb128-gray160-l2-v3", side=160, n_features=128, n_levels=2, mirror_keypoints=True
)
SPECS = {spec.method: spec for spec in (V1, V2, V3)}


_orbs: dict[tuple[int, int], Any] = {}


def _detector(n_features: int, n_levels: int) -> Any:
    key = (n_features, n_levels)
    if key not in _orbs:
        import cv2

        cv2.setNumThreads(1)  # callers parallelise with processes
        _orbs[key] = cv2.ORB.create(
            nfeatures=n_features,
            nlevels=n_levels,
            fastThreshold=10,
            edgeThreshold=15,
            patchSize=15,
        )
    return _orbs[key]


def _describe(
    gray: np.ndarray, mask: np.ndarray, spec: FeatureSpec = V1
) -> tuple[np.ndarray, np.ndarray]:
    detector = _detector(spec.n_features, spec.n_levels)
    keypoints, descriptors = detector.detectAndCompute(gray, mask)
    return _ordered(keypoints, descriptors)


def _describe_with_mirror(gray: np.ndarray, mask: np.ndarray, spec: FeatureSpec) -> tuple:
    """(points, descriptors, mirror points, mirror descriptors) from one detection."""
    import cv2

    detector = _detector(spec.n_features, spec.n_levels)
    keypoints, descriptors = detector.detectAndCompute(gray, mask)
    if descriptors is None or not keypoints:
        return _ordered((), None) * 2
    last = gray.shape[1] - 1
    flipped = [
        cv2.KeyPoint(
            last - k.pt[0], k.pt[1], k.size, (180.0 - k.angle) % 360.0, k.response, k.octave
        )
        for k in keypoints
    ]
    mirror = np.ascontiguousarray(gray[:, ::-1])
    flipped, mirror_descriptors = detector.compute(mirror, flipped)
    return _ordered(keypoints, descriptors) + _ordered(flipped, mirror_descriptors)


def _ordered(keypoints, descriptors) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001 - cv2 results
    """Points and descriptors, strongest keypoint first."""
    if descriptors is None or not keypoints:
        return np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8)
    order = np.argsort([-k.response for k in keypoints], kind="stable")
    points = np.array([keypoints[i].pt for i in order], dtype=np.float32).reshape(-1, 2)
    return points, np.ascontiguousarray(descriptors[order])


def extract(gray: np.ndarray, spec: FeatureSpec = V1) -> ImageFeatures:
    """ORB features of an upright gray image (any size; `decode_gray` gives the standard one)."""
    import cv2

    gray = np.ascontiguousarray(gray, dtype=np.uint8)
    if gray.min() > PADDING_LEVEL:  # no near-black pixel: no padding to mask (same features)
        mask = np.full(gray.shape, 255, np.uint8)
    else:
        mask = (cv2.medianBlur(gray, 5) > PADDING_LEVEL).astype(np.uint8) * 255
        mask = cv2.erode(mask, np.ones((PADDING_ERODE, PADDING_ERODE), np.uint8))
    height, width = gray.shape
    if spec.mirror_keypoints:
        points, descriptors, mirror_points, mirror_descriptors = _describe_with_mirror(
            gray, mask, spec
        )
        return ImageFeatures(width, height, points, descriptors, mirror_points, mirror_descriptors)
    points, descriptors = _describe(gray, mask, spec)
    mirror = np.ascontiguousarray(gray[:, ::-1])
    mirror_points, mirror_descriptors = _describe(mirror, np.ascontiguousarray(mask[:, ::-1]), spec)
    return ImageFeatures(width, height, points, descriptors, mirror_points, mirror_descriptors)


def features_from_bytes(data: bytes, spec: FeatureSpec = V1) -> ImageFeatures:
    """Decode and describe one image's bytes: what ingest workers may call per image."""
    return extract(decode_gray(data, spec.side), spec)


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
# V1 rows: float32 points and the tokens stored. V2 and V3 rows: int16 points in eighths of a
# pixel (exact enough for a 4 px RANSAC tolerance) and no tokens (`row_tokens` derives them).

POINT_STEPS = 8  # V2/V3 points are stored as round(x * 8), int16: sides up to 4,095 px


def pack_points(points: np.ndarray) -> bytes:
    return np.asarray(points, dtype="<f4").tobytes()


def unpack_points(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<f4").reshape(-1, 2)


def pack_points16(points: np.ndarray) -> bytes:
    return np.round(np.asarray(points, np.float32) * POINT_STEPS).astype("<i2").tobytes()


def unpack_points16(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<i2").reshape(-1, 2).astype(np.float32) / POINT_STEPS


def pack_descriptors(descriptors: np.ndarray) -> bytes:
    return np.asarray(descriptors, dtype=np.uint8).tobytes()


def unpack_descriptors(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=np.uint8).reshape(-1, 32)


def unpack_tokens(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<i4").astype(np.int32)


def to_row(image_id: int, features: ImageFeatures, spec: FeatureSpec = V1) -> dict:
    """The image_dedup_features row of one image."""
    if spec is V1:
        pack, stored_tokens = pack_points, tokens(features.descriptors).astype("<i4").tobytes()
    else:
        pack, stored_tokens = pack_points16, b""
    return {
        "image_id": image_id,
        "method": spec.method,
        "width": features.width,
        "height": features.height,
        "keypoints": pack(features.points),
        "descriptors": pack_descriptors(features.descriptors),
        "mirror_keypoints": pack(features.mirror_points),
        "mirror_descriptors": pack_descriptors(features.mirror_descriptors),
        "tokens": stored_tokens,
    }


def from_row(row) -> ImageFeatures:  # noqa: ANN001 - a Row or mapping with the columns above
    unpack = unpack_points if row.method == V1.method else unpack_points16
    return ImageFeatures(
        width=row.width,
        height=row.height,
        points=unpack(row.keypoints),
        descriptors=unpack_descriptors(row.descriptors),
        mirror_points=unpack(row.mirror_keypoints),
        mirror_descriptors=unpack_descriptors(row.mirror_descriptors),
    )


def row_tokens(method: str, stored_tokens: bytes, descriptors: bytes) -> np.ndarray:
    """The candidate tokens of a stored row: stored (V1) or derived from the descriptors."""
    if method == V1.method:
        return unpack_tokens(stored_tokens)
    return tokens(unpack_descriptors(descriptors))
