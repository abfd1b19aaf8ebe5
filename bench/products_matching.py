"""Ingredient matching: the blocked, cached index against fuzzy search over the whole inventory.

    PYTHONPATH=. python bench/products_matching.py [--sample 400]

Reads the real CosIng inventory and every ingredient name of the Sephora and skincare-clean
files from ../shared/data (no database). Prints:
- the time to match every product ingredient with `IngredientIndex` (exact lookups, then fuzzy
  on a blocked candidate set, cached per distinct name);
- on a sample of names that need fuzzy matching, the time per name of the blocked search
  against the baseline (rapidfuzz over all 28k inventory names, same scorer and threshold),
  their ratio, and how often both give the same answer (the recall cost of blocking).
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

from rapidfuzz import fuzz, process

from skinctl.products.matching import FUZZY_THRESHOLD, IngredientIndex
from skinctl.products.names import candidate_keys, digits_of, name_key
from skinctl.products.readers import ReadRow, read_cosing_inventory, read_products

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sample", type=int, default=400)
    args = parser.parse_args()

    seen: set[str] = set()
    inventory = []
    for item in read_cosing_inventory(
        DATA / "cosing" / "COSING_Ingredients-Fragrance Inventory_v2.csv"
    ):
        if isinstance(item, ReadRow) and item.record.name_key not in seen:
            seen.add(item.record.name_key)
            inventory.append((len(inventory) + 1, item.record.inci_name, item.record.name_key))
    names = []
    for path, fmt in (
        (DATA / "sephora" / "product_info.csv", "sephora"),
        (DATA / "products" / "skincare_products_clean.csv", "skincare-clean"),
    ):
        for item in read_products(path, fmt):
            if isinstance(item, ReadRow):
                names.extend(item.record.ingredients)
    print(f"inventory: {len(inventory):,} names; product ingredients: {len(names):,}")

    start = time.perf_counter()
    index = IngredientIndex(inventory)
    built = time.perf_counter() - start
    start = time.perf_counter()
    results = [index.match(name) for name in names]
    matched = time.perf_counter() - start
    rate = sum(r.ingredient_id is not None for r in results) / len(results)
    print(f"  build index {built:6.2f} s; match all {matched:6.2f} s; match rate {rate:.4f}")

    # names that reach the fuzzy stage
    fuzzy_keys = sorted(
        {name_key(n) for n, r in zip(names, results, strict=True) if r.method in ("fuzzy", "none")}
    )
    random.seed(7)
    sample = random.sample(fuzzy_keys, min(args.sample, len(fuzzy_keys)))
    all_keys = [key for _, _, key in inventory]

    def baseline(key: str) -> str | None:
        found = process.extractOne(key, all_keys, scorer=fuzz.ratio, score_cutoff=FUZZY_THRESHOLD)
        if found is None or digits_of(found[0]) != digits_of(key):
            return None
        return found[0]

    start = time.perf_counter()
    base_answers = [baseline(candidate_keys(key)[0][0]) for key in sample]
    base_time = time.perf_counter() - start
    start = time.perf_counter()
    blocked = [index._fuzzy(candidate_keys(key)[0][0]) for key in sample]
    blocked_time = time.perf_counter() - start
    blocked_answers = [
        None if m.ingredient_id is None else name_key(m.inci_name or "") for m in blocked
    ]
    same = sum(a == b for a, b in zip(base_answers, blocked_answers, strict=True)) / len(sample)
    print(f"fuzzy search on {len(sample)} names (whole name, threshold {FUZZY_THRESHOLD:g}):")
    print(f"  full inventory (baseline) {base_time / len(sample) * 1000:7.2f} ms/name")
    print(f"  blocked candidates        {blocked_time / len(sample) * 1000:7.2f} ms/name")
    print(f"  ratio blocked / baseline: {blocked_time / base_time:.3f}; same answer: {same:.3f}")


if __name__ == "__main__":
    main()
