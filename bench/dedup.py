"""Near-duplicate benchmark: quality on skin_types, and hash-index speed at 1,000,000 hashes.

    PYTHONPATH=. python bench/dedup.py [--skip-quality] [--skip-speed] [--workers N]

Quality: every file of ../shared/data/skin_types is decoded on the ingest paths (the pHash of
`skinctl.ingest.imageproc` and the features of `skinctl.dedup.features`); byte-identical files
are one image, as in the database. A file pair is "found" when both files are the same image
(SHA) or their images were linked. Truth: the manifest's `source_image_id`. Printed side by
side: the default method (`skinctl.dedup.matcher`) and plain pHash at distance <= 8.

Speed: 1,000,000 random 64-bit hashes plus planted near copies; one query and all pairs
within the radius, multi-index against numpy brute force measured in the same run (brute
force all-pairs is timed on a slice and scaled by the pair count, since the full run would
take an hour).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import itertools
import json
import os
import pickle
import sys
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "skin_types"
if not DATA.exists():
    DATA = Path("/work/shared/data/skin_types")


def _analyse(path: str):
    from skinctl.dedup.features import features_from_bytes
    from skinctl.ingest.imageproc import analyse_bytes

    data = (DATA / path).read_bytes()
    return hashlib.sha256(data).hexdigest(), analyse_bytes(data).phash, features_from_bytes(data)


def evaluate(
    name: str, linked: set[tuple[int, int]], files: list[dict], image_of: list[int]
) -> dict:
    """Pair-level precision/recall over files, plus the transitive (group) view."""
    n = len(files)
    source = [f["source_image_id"] for f in files]
    truth = {(i, j) for i, j in itertools.combinations(range(n), 2) if source[i] == source[j]}
    identical = {(i, j) for i, j in truth if image_of[i] == image_of[j]}
    files_of = defaultdict(list)
    for i, image in enumerate(image_of):
        files_of[image].append(i)
    predicted = set()
    for a, b in linked:
        for i in files_of[a]:
            for j in files_of[b]:
                predicted.add((min(i, j), max(i, j)))
    predicted_all = predicted | {
        (i, j) for group in files_of.values() for i, j in itertools.combinations(sorted(group), 2)
    }
    hits = predicted_all & truth
    near_truth = truth - identical
    # The same upload filed under two classes keeps its hash but changes the class prefix
    # (`dry_<hash>` / `oily_<hash>`): the same photo, which the source-id truth calls different.
    photo = [s.split("_", 1)[-1] for s in source]
    same_photo = {(i, j) for i, j in predicted_all if photo[i] == photo[j]}
    near_hits = predicted & near_truth
    return {
        "method": name,
        "linked_image_pairs": len(linked),
        "precision": len(hits) / max(1, len(predicted_all)),
        "precision_near_only": len(predicted & truth) / max(1, len(predicted)),
        "false_file_pairs": len(predicted_all - truth),
        "precision_vs_photo_hash": len(same_photo) / max(1, len(predicted_all)),
        "recall_all": len(hits) / len(truth),
        "recall_non_identical": len(near_hits) / len(near_truth),
        "truth_pairs": len(truth),
        "truth_non_identical": len(near_truth),
    }


def quality(workers: int, cache: Path | None = None, dump: Path | None = None) -> None:
    if not (DATA / "manifest.csv").exists():
        print(f"quality: skipped, {DATA} is absent")
        return
    from skinctl.dedup.index import MultiIndex, to_unsigned
    from skinctl.dedup.matcher import DEFAULT_PARAMS, METHOD, find_pairs

    files = list(csv.DictReader((DATA / "manifest.csv").open()))
    t0 = time.perf_counter()
    cached = cache is not None and cache.exists()
    if cached:
        analysed = pickle.loads(cache.read_bytes())
    else:
        with ProcessPoolExecutor(workers) as pool:
            analysed = list(pool.map(_analyse, [f["path"] for f in files], chunksize=32))
        if cache is not None:
            cache.write_bytes(pickle.dumps(analysed))
    t_features = time.perf_counter() - t0
    # One image per distinct SHA-256, as ingest stores them.
    image_by_sha: dict[str, int] = {}
    phashes, features, image_of = [], [], []
    for sha, phash, feats in analysed:
        if sha not in image_by_sha:
            image_by_sha[sha] = len(phashes)
            phashes.append(phash)
            features.append(feats)
        image_of.append(image_by_sha[sha])
    if cached:
        print(
            f"skin_types: {len(files)} files, {len(phashes)} distinct images; features from {cache}"
        )
    else:
        print(
            f"skin_types: {len(files)} files, {len(phashes)} distinct images; "
            f"decode + pHash + ORB features {t_features:.1f} s with {workers} workers "
            f"({t_features * workers / len(files) * 1000:.1f} ms per file per core)"
        )

    index = MultiIndex(to_unsigned(phashes), 8)
    phash_pairs = {(int(i), int(j)) for i, j, _d in index.all_pairs(8)}
    t0 = time.perf_counter()
    found = find_pairs(features, DEFAULT_PARAMS)
    t_match = time.perf_counter() - t0
    print(
        f"default method {METHOD} {DEFAULT_PARAMS}: candidates + verification {t_match:.1f} s "
        f"(one process, {t_match / len(phashes) * 1000:.1f} ms per image)"
    )
    rows = [
        evaluate("phash64 <= 8", phash_pairs, files, image_of),
        evaluate(METHOD, set(found), files, image_of),
    ]
    keys = [
        "linked_image_pairs",
        "precision",
        "precision_near_only",
        "precision_vs_photo_hash",
        "false_file_pairs",
        "recall_all",
        "recall_non_identical",
        "truth_pairs",
        "truth_non_identical",
    ]
    print(f"{'':24}" + "".join(f"{r['method']:>18}" for r in rows))
    for key in keys:
        cells = "".join(
            f"{r[key]:>18.3f}" if isinstance(r[key], float) else f"{r[key]:>18}" for r in rows
        )
        print(f"{key:24}{cells}")
    # Cross-source links: the manifest says "different photo"; many are the same photo filed
    # under two source ids (label conflicts). Listed so a person can look.
    source = [None] * len(phashes)
    for f, image in zip(files, image_of, strict=True):
        source[image] = f["source_image_id"]
    paths = {}
    for f, image in zip(files, image_of, strict=True):
        paths.setdefault(image, f["path"])
    cross = [(i, j, m) for (i, j), m in found.items() if source[i] != source[j]]
    unexplained = [
        (i, j, m) for i, j, m in cross if source[i].split("_", 1)[-1] != source[j].split("_", 1)[-1]
    ]
    if dump is not None:
        dump.write_text(
            json.dumps(
                [
                    {
                        "a": paths[i],
                        "b": paths[j],
                        "same_source": source[i] == source[j],
                        "inliers": m.inliers,
                        "mirrored": m.mirrored,
                        "scale": m.scale,
                        "angle": m.angle,
                    }
                    for (i, j), m in found.items()
                ]
            )
        )
    print(
        f"links between different source ids: {len(cross)}; of them {len(cross) - len(unexplained)} "
        f"are one photo filed under two classes (same hash after the class prefix); the other "
        f"{len(unexplained)}, weakest first (look at them: most are the same photo uploaded twice):"
    )
    for i, j, m in sorted(unexplained, key=lambda x: x[2].inliers)[:15]:
        print(f"  inliers {m.inliers:4d}  {paths[i]}  <->  {paths[j]}")


def speed(radius_pairs: int = 6, radius_query: tuple[int, ...] = (6, 8)) -> None:
    from skinctl.dedup.index import MultiIndex, brute_force_query

    rng = np.random.default_rng(7)
    n = 1_000_000
    base = rng.integers(0, 2**64, size=n - 50_000, dtype=np.uint64)
    copies = base[rng.integers(0, len(base), size=50_000)].copy()
    for _ in range(5):  # up to 5 flipped bits per planted copy
        bit = rng.integers(0, 64, size=len(copies)).astype(np.uint64)
        flip = rng.random(len(copies)) < 0.8
        copies[flip] ^= np.uint64(1) << bit[flip]
    codes = np.concatenate([base, copies])
    queries = codes[rng.integers(0, n, size=500)]
    print(f"\nhash index: {n:,} hashes (random + 50,000 planted near copies)")
    for radius in radius_query:
        t0 = time.perf_counter()
        index = MultiIndex(codes, radius)
        t_build = time.perf_counter() - t0
        t0 = time.perf_counter()
        got = [index.query(int(q)) for q in queries]
        t_index = (time.perf_counter() - t0) / len(queries)
        t0 = time.perf_counter()
        expected = [brute_force_query(codes, int(q), radius) for q in queries]
        t_brute = (time.perf_counter() - t0) / len(queries)
        same = all(np.array_equal(g[0], e[0]) for g, e in zip(got, expected, strict=True))
        print(
            f"  query radius {radius}: multi-index {t_index * 1000:.3f} ms, brute force "
            f"{t_brute * 1000:.3f} ms ({t_brute / t_index:.1f}x), identical results: {same}, "
            f"index build {t_build:.1f} s"
        )
    index = MultiIndex(codes, radius_pairs)
    t0 = time.perf_counter()
    pairs = index.all_pairs()
    t_pairs = time.perf_counter() - t0
    # Brute force on the first rows against all hashes, scaled to the full triangle; the pairs
    # it finds there must be exactly the multi-index's pairs that start in those rows.
    rows = 2_000
    t0 = time.perf_counter()
    brute = []
    for start in range(0, rows, 500):
        block = codes[start : start + 500]
        d = np.bitwise_count(block[:, None] ^ codes[None, :])
        i, j = np.nonzero(d <= radius_pairs)
        i = i + start
        keep = i < j
        brute.append(np.stack([i[keep], j[keep], d[i[keep] - start, j[keep]]], axis=1))
    t_slice = time.perf_counter() - t0
    brute_pairs = np.concatenate(brute).astype(np.int64)
    brute_pairs = brute_pairs[np.lexsort((brute_pairs[:, 1], brute_pairs[:, 0]))]
    t_brute_all = t_slice / rows * n / 2  # each pair once
    in_slice = pairs[pairs[:, 0] < rows]
    print(
        f"  all pairs radius {radius_pairs}: multi-index {t_pairs:.1f} s, {len(pairs):,} pairs; "
        f"brute force ~{t_brute_all:.0f} s (extrapolated from {rows:,} rows), "
        f"{t_brute_all / t_pairs:.1f}x; pairs starting in the first {rows:,} rows identical: "
        f"{np.array_equal(in_slice, brute_pairs)} ({len(in_slice):,})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--cache", type=Path, help="reuse decoded features from this pickle (made if absent)"
    )
    parser.add_argument("--dump", type=Path, help="write every linked pair as JSON here")
    args = parser.parse_args()
    if not args.skip_quality:
        quality(args.workers, args.cache, args.dump)
    if not args.skip_speed:
        speed()


if __name__ == "__main__":
    main()
