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

Methods (`Method`: features + parameters, recorded by name on every pair): `V1`
(orb-ransac-v1, kept so its links stay explainable and the bench can compare) and `V2`
(orb-ransac-v2, the default).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
DEFAULT_METHOD = V2
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


_matcher: Any = None


def _bf() -> Any:
    global _matcher
    if _matcher is None:
        import cv2

        _matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    return _matcher


def _fit(
    a_points: np.ndarray,
    a_desc: np.ndarray,
    b_points: np.ndarray,
    b_desc: np.ndarray,
    params: MatchParams,
) -> tuple[int, int, float, float, float, float]:
    """(inliers, ratio-test matches, scale, angle, spread in px, band ratio) of the best
    similarity fit (spread: the smaller axis-aligned std of the inliers; band: see
    `_band_ratio`, computed only when `params.min_band` asks for it)."""
    import cv2

    if len(a_desc) < 5 or len(b_desc) < 5:
        return 0, 0, 0.0, 0.0, 0.0, 0.0
    pairs = _bf().knnMatch(a_desc, b_desc, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < params.ratio * p[1].distance]
    if len(good) < max(4, params.min_inliers):
        return 0, len(good), 0.0, 0.0, 0.0, 0.0
    source = a_points[[m.queryIdx for m in good]]
    target = b_points[[m.trainIdx for m in good]]
    transform, inlier_mask = cv2.estimateAffinePartial2D(
        source, target, method=cv2.RANSAC, ransacReprojThreshold=params.ransac_px
    )
    if transform is None:
        return 0, len(good), 0.0, 0.0, 0.0, 0.0
    inlier = inlier_mask.ravel() > 0
    scale = float(np.hypot(transform[0, 0], transform[1, 0]))
    angle = float(np.degrees(np.arctan2(transform[1, 0], transform[0, 0])))
    spread = (
        float(min(source[inlier].std(axis=0).min(), target[inlier].std(axis=0).min()))
        if inlier.any()
        else 0.0
    )
    band = min(_band_ratio(source[inlier]), _band_ratio(target[inlier])) if params.min_band else 0.0
    return int(inlier.sum()), len(good), scale, angle, spread, band


def _band_ratio(points: np.ndarray) -> float:
    """Std of points along their thinnest direction over the std along their widest: near 0
    for points in a thin band, 1 for an even spread (0 for fewer than 3 points)."""
    if len(points) < 3:
        return 0.0
    low, high = np.linalg.eigvalsh(np.cov(points.astype(np.float64), rowvar=False))
    return float(np.sqrt(max(low, 0.0) / high)) if high > 0 else 0.0


def verify(
    a: ImageFeatures,
    b: ImageFeatures,
    params: MatchParams = DEFAULT_PARAMS,
    mirrored: bool | None = None,
) -> Match | None:
    """The geometric check of one pair; `mirrored` None tries both orientations of `a`."""
    best: Match | None = None
    for is_mirrored in (False, True) if mirrored is None else (mirrored,):
        a_points, a_desc = a.orientation(is_mirrored)
        inliers, matches, scale, angle, spread, band = _fit(
            a_points, a_desc, b.points, b.descriptors, params
        )
        side = max(a.width, a.height, b.width, b.height)
        if (
            inliers >= params.min_inliers
            and params.min_scale <= scale <= params.max_scale
            and spread >= params.min_spread * side
            and band >= params.min_band
        ):
            match = Match(inliers, matches, is_mirrored, scale, angle)
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
    index = TokenIndex([tokens(f.descriptors) for f in features], params.max_postings)
    to_check: dict[tuple[int, int], bool | None] = {}
    for position in range(len(features)) if queries is None else queries:
        upright, mirrored = query_tokens(features[position])
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
