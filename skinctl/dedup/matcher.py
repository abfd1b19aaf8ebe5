"""The near-duplicate method: cheap candidates from shared descriptor tokens, then a geometric
check of each candidate pair.

Stage 1 (`TokenIndex`): an inverted index from ORB descriptor tokens (see `features.tokens`)
to images. An image's candidates are the `top_k` stored images sharing the most tokens with
it (its upright or its mirrored descriptors), at least `min_shared`. Lookup cost grows with
the posting lists touched, not with the number of stored images; tokens held by more than
`max_postings` images (texture every photo has) are skipped like stop words.

Stage 2 (`verify`): ratio-test matches of the ORB descriptors, then RANSAC fits a similarity
transform (rotation, uniform scale, translation; mirrored via the mirror descriptors). A
pair is a near-duplicate when at least `min_inliers` matches agree and the scale is
plausible: unrelated faces share many corner-like patches but not one consistent geometry,
and the degenerate fits they produce collapse to scale ~0; inliers crowded into a strip
(a shared stock-photo watermark) do not count either (v2 also rejects inliers in a thin band
of any direction: `MatchParams.min_band`).

v3 counts inliers one-to-one and also rejects overlays: inliers that sit at the same place in
both images, packed in a small part of where the pictures have keypoints (a logo block pasted
on two different photos; `MatchParams.overlay_shift`).

Methods (`Method`: features + parameters, recorded by name on every pair): `V1`
(orb-ransac-v1) and `V2` (orb-ransac-v2), kept so their links stay explainable and the bench
can compare, and `V3` (orb-ransac-v3, the default).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from skinctl.dedup import features as feature_lib
from skinctl.dedup.features import FeatureSpec, ImageFeatures, tokens


@dataclass(frozen=True)
class MatchParams:
    top_k: int = 8  # candidates verified per image
    min_shared: int = 15  # tokens a candidate must share (copies share dozens to hundreds)
    max_postings: int | None = None  # None: max(64, images / 1000)
    ratio: float = 0.8  # Lowe's ratio test on descriptor distances
    ransac_px: float = 4.0  # reprojection tolerance, in feature-image pixels
    min_inliers: int = 25
    min_scale: float = 0.6
    max_scale: float = 1.6
    # Inliers must spread over the picture (std along each axis, in both images, at least this
    # fraction of the longer side): a shared watermark strip or logo is not a duplicate.
    min_spread: float = 0.014
    # Inliers must not lie in one thin band of any direction: in both images, the std of the
    # inliers along their thinnest direction is at least this fraction of the std along the
    # widest (a banner across the bottom is a long thin band; the inliers of a real copy, even
    # when they crowd on a face, are not). 0 turns the check off, as in v1.
    min_band: float = 0.0
    # An overlay is not a duplicate (v3): when the inliers sit where they sat (upright fit,
    # median displacement of the inlier pairs at most `overlay_shift` of the longer side) and
    # are packed in a block (in both images at least `overlay_outside` of the keypoints lie
    # outside the inliers' convex hull, and that hull is less than `overlay_area` of the hull
    # of all the keypoints), what matched is something pasted at one place on two pictures
    # that differ around it: a logo or watermark block, which need not be a band. Real copies
    # are cropped, turned or rescaled (their points move), or, when they sit in place, match
    # over most of the picture. 0 turns the check off (v1, v2).
    overlay_shift: float = 0.0
    overlay_outside: float = 0.05
    overlay_area: float = 0.6
    # Count inliers by distinct keypoints of b: a's keypoints at one place on two pyramid
    # levels, or a patch of similar texture, can all match one keypoint of b, and such
    # many-to-one inliers made the weakest false link of v3 without it (16 inliers, 12 keypoints).
    one_to_one: bool = False


@dataclass(frozen=True)
class Method:
    """A near-duplicate method as recorded on the pairs: its features and its pair check."""

    name: str
    features: FeatureSpec
    params: MatchParams


V1 = Method("orb-ransac-v1", feature_lib.V1, MatchParams())
# v2: 128 keypoints on a cheaper decode (see features.V2); with fewer tokens per image the
# candidate threshold is lower, and with fewer matches so is the inlier count; the banner
# check is on. Measured on skin_types: bench/dedup.py.
V2 = Method(
    "orb-ransac-v2",
    feature_lib.V2,
    MatchParams(top_k=6, min_shared=8, min_inliers=15, min_band=0.12),
)
# v3: the same 128 keypoints on a 160 px decode (see features.V3; libjpeg decodes straight
# to it, about two thirds of v2's feature cost); a candidate must share 10 tokens instead of 8, which
# halves the pairs verified (the copies share far more); inliers count one-to-one; overlays do
# not link. The overlay thresholds, measured with a logo block (15-25% of the picture, 5
# places, smooth to busy photos: 45 cases) pasted on two different generated photos: its
# inlier pairs moved 0.0 px, their hull is at most 0.50 of the keypoints' hull and leaves at
# least 10% of the keypoints outside, in both images. On skin_types no linked copy moved less
# than 1 px (0.8 px = 0.5% of 160 is the limit); the links that moved 0 px are the same photo
# filed twice, some letterboxed differently (10-40% of the keypoints outside the hull in one
# image), but their inliers span 0.69 or more of the keypoints' hull.
# Measured on skin_types: bench/dedup.py.
V3 = Method(
    "orb-ransac-v3",
    feature_lib.V3,
    MatchParams(
        top_k=6,
        min_shared=10,
        min_inliers=15,
        min_band=0.12,
        overlay_shift=0.005,
        overlay_outside=0.05,
        overlay_area=0.6,
        one_to_one=True,
    ),
)
DEFAULT_METHOD = V3
METHOD = DEFAULT_METHOD.name
DEFAULT_PARAMS = DEFAULT_METHOD.params


@dataclass(frozen=True)
class Match:
    inliers: int
    matches: int
    mirrored: bool
    scale: float
    angle: float  # degrees


class TokenIndex:
    """Inverted index token -> positions (0..n-1) of the images holding it."""

    def __init__(self, token_lists: list[np.ndarray], max_postings: int | None = None) -> None:
        self.size = len(token_lists)
        self.max_postings = max_postings if max_postings is not None else max(64, self.size // 1000)
        lengths = np.array([len(t) for t in token_lists], dtype=np.int64)
        if lengths.sum():
            all_tokens = np.concatenate([np.asarray(t, dtype=np.int32) for t in token_lists])
        else:
            all_tokens = np.zeros(0, np.int32)
        order = np.argsort(all_tokens, kind="stable")
        # Positions fit int32; owners and bounds are int32 and the counts are not kept (the
        # difference of two bounds): 8 bytes per posting plus 4 per distinct token.
        self._owners = np.repeat(np.arange(self.size, dtype=np.int32), lengths)[order]
        sorted_tokens = all_tokens[order]
        del all_tokens, order
        firsts = (
            np.flatnonzero(sorted_tokens[1:] != sorted_tokens[:-1]) + 1
            if len(sorted_tokens)
            else np.zeros(0, np.int64)
        )
        self._tokens = (
            sorted_tokens[np.concatenate(([0], firsts)).astype(np.int64)]
            if len(sorted_tokens)
            else sorted_tokens
        )
        bound_type = np.int32 if len(sorted_tokens) < 2**31 else np.int64
        self._bounds = np.concatenate(([0], firsts, [len(sorted_tokens)])).astype(bound_type)

    def shared(self, query_tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positions, number of shared tokens) of every image sharing at least one token."""
        query_tokens = np.asarray(query_tokens, dtype=np.int32)
        if not len(query_tokens) or not len(self._tokens):
            return np.zeros(0, np.int32), np.zeros(0, np.int64)
        at = np.searchsorted(self._tokens, query_tokens)
        inside = at < len(self._tokens)
        at = at[inside][self._tokens[at[inside]] == query_tokens[inside]]
        starts = self._bounds[at].astype(np.int64)
        counts = self._bounds[at + 1] - starts
        keep = counts <= self.max_postings
        starts, counts = starts[keep], counts[keep]
        if not len(starts):
            return np.zeros(0, np.int32), np.zeros(0, np.int64)
        # Gather every posting of the matched tokens without a Python loop.
        offsets = np.repeat(starts - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
        postings = self._owners[offsets + np.arange(counts.sum())]
        return np.unique(postings, return_counts=True)

    def candidates(
        self,
        upright: np.ndarray,
        mirrored: np.ndarray,
        *,
        top_k: int,
        min_shared: int,
        exclude: int = -1,
    ) -> list[tuple[int, int, bool]]:
        """Up to `top_k` (position, shared tokens, mirrored) best candidates for one image."""
        up_positions, up_counts = self.shared(upright)
        mirror_positions, mirror_counts = self.shared(mirrored)
        positions = np.concatenate([up_positions, mirror_positions]).astype(np.int64)
        counts = np.concatenate([up_counts, mirror_counts])
        is_mirrored = np.concatenate(
            [np.zeros(len(up_positions), bool), np.ones(len(mirror_positions), bool)]
        )
        keep = (counts >= min_shared) & (positions != exclude)
        positions, counts, is_mirrored = positions[keep], counts[keep], is_mirrored[keep]
        # Best orientation per image, then the top_k images (ties: lower position first).
        order = np.lexsort((positions, -counts))
        positions, counts, is_mirrored = positions[order], counts[order], is_mirrored[order]
        _unique, first = np.unique(positions, return_index=True)
        first = np.sort(first)[:top_k]
        return [(int(positions[i]), int(counts[i]), bool(is_mirrored[i])) for i in first]


def query_tokens(features: ImageFeatures) -> tuple[np.ndarray, np.ndarray]:
    """The tokens an image is looked up with: upright and mirrored."""
    return tokens(features.descriptors), tokens(features.mirror_descriptors)


@dataclass(frozen=True)
class _Fit:
    """The best similarity fit of one orientation (inliers 0: no fit)."""

    inliers: int = 0
    matches: int = 0  # ratio-test matches
    scale: float = 0.0
    angle: float = 0.0  # degrees
    spread: float = 0.0  # the smaller axis-aligned std of the inliers, px (both images)
    band: float = 0.0  # see `_band_ratio` (both images; computed when `min_band` asks)
    overlay: bool = False  # the inliers look like one pasted block (see `overlay_shift`)


def _fit(
    a_points: np.ndarray,
    a_desc: np.ndarray,
    b_points: np.ndarray,
    b_desc: np.ndarray,
    params: MatchParams,
    sizes: tuple[int, int, int, int] = (0, 0, 0, 0),  # a width, a height, b width, b height
    upright: bool = True,
) -> _Fit:
    """The best similarity fit of a's points on b's (ratio-test matches, then RANSAC)."""
    import cv2

    if len(a_desc) < 5 or len(b_desc) < 5:
        return _Fit()
    # The two nearest neighbours as arrays (batchDistance), not knnMatch's DMatch objects.
    distances, nearest = cv2.batchDistance(
        a_desc, b_desc, cv2.CV_32S, normType=cv2.NORM_HAMMING, K=2
    )
    good = np.flatnonzero(distances[:, 0] < params.ratio * distances[:, 1])
    if len(good) < max(4, params.min_inliers):
        return _Fit(matches=len(good))
    matched = np.asarray(nearest[good, 0], dtype=np.intp)
    source = a_points[good]
    target = b_points[matched]
    transform, inlier_mask = cv2.estimateAffinePartial2D(
        source, target, method=cv2.RANSAC, ransacReprojThreshold=params.ransac_px
    )
    if transform is None:
        return _Fit(matches=len(good))
    inlier = inlier_mask.ravel() > 0
    # One-to-one (v3): several of a's keypoints matched to one of b's count once.
    count = int(len(np.unique(matched[inlier])) if params.one_to_one else inlier.sum())
    scale = float(np.hypot(transform[0, 0], transform[1, 0]))
    angle = float(np.degrees(np.arctan2(transform[1, 0], transform[0, 0])))
    if count < params.min_inliers:
        return _Fit(count, len(good), scale, angle)
    source, target = source[inlier], target[inlier]
    spread = float(min(source.std(axis=0).min(), target.std(axis=0).min()))
    band = min(_band_ratio(source), _band_ratio(target)) if params.min_band else 0.0
    overlay = (
        upright
        and params.overlay_shift > 0
        and _is_overlay(source, target, a_points, b_points, max(sizes), params)
    )
    return _Fit(count, len(good), scale, angle, spread, band, overlay)


def _is_overlay(
    source: np.ndarray,
    target: np.ndarray,
    a_points: np.ndarray,
    b_points: np.ndarray,
    side: int,
    params: MatchParams,
) -> bool:
    """Inlier pairs that did not move (median shift <= `overlay_shift` of the longer side),
    packed in a block: in both images at least `overlay_outside` of the keypoints lie outside
    the inliers' convex hull, and in both that hull is less than `overlay_area` of the hull of
    all the keypoints. One block pasted at one place on two pictures that differ around it; a
    copy that sits in place matches around the block too (its inliers span the picture)."""
    if not side or np.median(np.hypot(*(target - source).T)) > params.overlay_shift * side:
        return False
    if max(_hull_ratio(source, a_points), _hull_ratio(target, b_points)) >= params.overlay_area:
        return False
    return (
        min(
            _outside_hull(a_points, source, params.ransac_px),
            _outside_hull(b_points, target, params.ransac_px),
        )
        >= params.overlay_outside
    )


def _hull_ratio(inliers: np.ndarray, points: np.ndarray) -> float:
    """The area of the inliers' convex hull over that of all the keypoints'."""
    import cv2

    if len(inliers) < 3:
        return 0.0
    whole = cv2.contourArea(cv2.convexHull(points.astype(np.float32)))
    return cv2.contourArea(cv2.convexHull(inliers.astype(np.float32))) / whole if whole else 0.0


def _outside_hull(points: np.ndarray, hull_of: np.ndarray, margin: float) -> float:
    """The fraction of `points` farther than `margin` px outside the convex hull of `hull_of`."""
    import cv2

    if not len(points):
        return 0.0
    hull = cv2.convexHull(hull_of.astype(np.float32)).reshape(-1, 2).astype(np.float64)
    if len(hull) < 3:
        return 1.0
    # Signed distances to each edge (the hull is convex): outside when beyond any edge.
    edges = np.roll(hull, -1, axis=0) - hull
    normals = np.stack([edges[:, 1], -edges[:, 0]], axis=1)
    normals /= np.maximum(np.hypot(*normals.T), 1e-9)[:, None]
    offsets = (points[:, None, :] - hull[None, :, :]) * normals[None, :, :]
    distances = offsets.sum(axis=2)
    # cv2.convexHull turns clockwise in image coordinates (y down) or not: take the side the
    # hull's own centre is on as inside.
    inside_sign = np.sign(((hull.mean(axis=0) - hull) * normals).sum(axis=1))
    beyond = (distances * inside_sign[None, :]) < -margin
    return float(beyond.any(axis=1).mean())


def _band_ratio(points: np.ndarray) -> float:
    """Std of points along their thinnest direction over the std along their widest: near 0
    for points in a thin band, 1 for an even spread (0 for fewer than 3 points)."""
    if len(points) < 3:
        return 0.0
    # The eigenvalues of the 2x2 covariance in closed form (numpy's cov + eigvalsh cost more
    # than the RANSAC fit).
    x, y = points[:, 0].astype(np.float64), points[:, 1].astype(np.float64)
    x, y = x - x.mean(), y - y.mean()
    xx, yy, xy = float(x @ x), float(y @ y), float(x @ y)
    half_trace, root = (xx + yy) / 2, float(np.hypot((xx - yy) / 2, xy))
    high, low = half_trace + root, half_trace - root
    return float(np.sqrt(max(low, 0.0) / high)) if high > 0 else 0.0


def verify(
    a: ImageFeatures,
    b: ImageFeatures,
    params: MatchParams = DEFAULT_PARAMS,
    mirrored: bool | None = None,
) -> Match | None:
    """The geometric check of one pair; `mirrored` None tries both orientations of `a`."""
    best: Match | None = None
    sizes = (a.width, a.height, b.width, b.height)
    side = max(sizes)
    for is_mirrored in (False, True) if mirrored is None else (mirrored,):
        a_points, a_desc = a.orientation(is_mirrored)
        fit = _fit(a_points, a_desc, b.points, b.descriptors, params, sizes, not is_mirrored)
        if (
            fit.inliers >= params.min_inliers
            and params.min_scale <= fit.scale <= params.max_scale
            and fit.spread >= params.min_spread * side
            and fit.band >= params.min_band
            and not fit.overlay
        ):
            match = Match(fit.inliers, fit.matches, is_mirrored, fit.scale, fit.angle)
            if best is None or match.inliers > best.inliers:
                best = match
    return best


def find_pairs(
    features: list[ImageFeatures],
    params: MatchParams = DEFAULT_PARAMS,
    queries: list[int] | None = None,
    extra_pairs: set[tuple[int, int]] | None = None,
) -> dict[tuple[int, int], Match]:
    """Near-duplicate pairs (i < j, positions in `features`) among a list of images.

    `queries`: positions whose candidates are looked up (default all: every pair); extra
    candidate pairs (e.g. from pHash) are verified too. Used by the bench and the service.
    """
    upright_tokens = [tokens(f.descriptors) for f in features]
    index = TokenIndex(upright_tokens, params.max_postings)
    to_check: dict[tuple[int, int], bool | None] = {}
    for position in range(len(features)) if queries is None else queries:
        upright, mirrored = upright_tokens[position], tokens(features[position].mirror_descriptors)
        for other, _count, is_mirrored in index.candidates(
            upright, mirrored, top_k=params.top_k, min_shared=params.min_shared, exclude=position
        ):
            pair = (min(position, other), max(position, other))
            # The orientation is relative to `position`; mirroring is symmetric, so it holds
            # for the ordered pair as well.
            to_check[pair] = (
                None if pair in to_check and to_check[pair] != is_mirrored else is_mirrored
            )
    for pair in extra_pairs or ():
        to_check.setdefault(pair, None)
    found = {}
    for (i, j), mirrored in to_check.items():
        match = verify(features[i], features[j], params, mirrored)
        if match is None and mirrored is not None:
            match = verify(features[i], features[j], params, not mirrored)
        if match is not None:
            found[(i, j)] = match
    return found
