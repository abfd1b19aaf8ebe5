"""skin_types, trained twice on the CPU: with the group-aware split and with the dataset's own
train/valid/test folders, each figure next to its majority-class rate and 95% intervals.

    PYTHONPATH=. python bench/skin_types.py [--image-size 96] [--epochs 20] [--model small-cnn]

Runs its own embedded PostgreSQL and image store in a temporary home, loads
../shared/data/skin_types the way ingest would (tests/train/realdata.py), then calls the same
service `skinctl train run` calls. The folders' split leaks: augmented copies of one source
photo sit in train and test; the script counts them.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy.orm import Session

from skinctl.db import migrate
from skinctl.db.embedded import EmbeddedPostgres
from skinctl.db.engine import make_engine
from skinctl.storage.local import LocalStorage
from skinctl.train.fitting import prepare
from skinctl.train.options import TrainOptions
from skinctl.train.records import RunDetail
from skinctl.train.runner import run_training
from tests.train.realdata import load_skin_types

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "skin_types"


def leaked_groups(engine, options: TrainOptions) -> tuple[int, int]:
    """(test images whose source photo also has a copy in train, test images)."""
    with Session(engine) as session:
        prepared = prepare(session, options)
    splits_of_group = defaultdict(set)
    for e in prepared.selection.examples:
        splits_of_group[prepared.groups[e.image_id]].add(prepared.split_of[e.image_id])
    test = prepared.parts["test"]
    return sum("train" in splits_of_group[prepared.groups[e.image_id]] for e in test), len(test)


def describe(label: str, run: RunDetail, leak: tuple[int, int]) -> str:
    t = run.test_metrics
    return (
        f"{label:<22} test n={t['n']:<4} accuracy {t['accuracy']:.3f} "
        f"[{t['accuracy_ci95'][0]:.3f}, {t['accuracy_ci95'][1]:.3f}]  majority {t['majority_rate']:.3f} "
        f"({t['majority_class']})  macro F1 {t['f1_macro']:.3f} [{t['f1_macro_ci95'][0]:.3f}, "
        f"{t['f1_macro_ci95'][1]:.3f}] vs {t['majority_f1_macro']:.3f}  best epoch "
        f"{run.best_epoch}/{run.epochs_run}  test images with a train copy: {leak[0]}/{leak[1]}"
        + ("  ** does not beat the majority rate **" if t["accuracy"] <= t["majority_rate"] else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--model", default="small-cnn")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    if not DATA.exists():
        sys.exit(f"{DATA} is absent")
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        server = EmbeddedPostgres(home)
        engine = make_engine(server.ensure_running(announce=lambda _m: None))
        try:
            migrate.upgrade(engine)
            storage = LocalStorage(str(home / "images"))
            start = time.perf_counter()
            with Session(engine) as session, session.begin():
                loaded = load_skin_types(session, storage, DATA)
            print(f"loaded {loaded} in {time.perf_counter() - start:.0f} s", flush=True)
            lines = []
            for label, split in (("group-aware split", "group"), ("folders' own split", "dataset")):
                options = TrainOptions(
                    task="skin-type",
                    model=args.model,
                    image_size=args.image_size,
                    epochs=args.epochs,
                    seed=args.seed,
                    split=split,
                    patience=5,
                )
                leak = leaked_groups(engine, options)
                start = time.perf_counter()
                run = run_training(engine, storage, options, home=home)
                lines.append(
                    describe(label, run, leak) + f"  ({time.perf_counter() - start:.0f} s)"
                )
                print(lines[-1], flush=True)
            print("\nskin_types, " + f"{args.model} at {args.image_size} px, CPU:")
            print("\n".join(lines))
        finally:
            engine.dispose()
            server.stop()


if __name__ == "__main__":
    main()
