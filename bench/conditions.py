"""skin_conditions (6 classes, 360 photos), small from-scratch recipes side by side: macro-F1
and accuracy with 95% intervals on the same group-aware test split, in one run.

    PYTHONPATH=. python bench/conditions.py [--image-size 96] [--epochs 15] [--recipes a,b]

Runs its own embedded PostgreSQL and image store in a temporary home, loads
../shared/data/skin_conditions the way ingest would (tests/train/realdata.py), estimates the
skin tone of every image (`skinctl images tone`'s service), then calls the service
`skinctl train run` calls once per recipe (same seed, so the same split). The last lines are
the fairness summary (worst estimated-tone group vs the rest) of each recipe.

The machine's cores are shared: the default is 96 px and 15 epochs (the issue's baseline was
128 px); pass --image-size 128 for the full size.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy.orm import Session

from skinctl.db import migrate
from skinctl.db.embedded import EmbeddedPostgres
from skinctl.db.engine import make_engine
from skinctl.ingest.tone_backfill import backfill_tones
from skinctl.storage.local import LocalStorage
from skinctl.train.fairness import fairness_summary
from skinctl.train.options import TrainOptions
from skinctl.train.runner import run_training
from tests.train.realdata import load_skin_conditions

ROOT = Path(__file__).resolve().parents[1]
# ../shared/data from the project root (a worktree sits one folder deeper).
DATA = next(
    (
        folder / "shared" / "data" / "skin_conditions"
        for folder in (ROOT.parent, ROOT.parent.parent)
        if (folder / "shared" / "data" / "skin_conditions").exists()
    ),
    ROOT.parent / "shared" / "data" / "skin_conditions",
)

RECIPES: dict[str, dict[str, Any]] = {
    "baseline (small-cnn)": {},
    "strong augmentation": {"augment": "strong"},
    "strong + label smoothing 0.1": {"augment": "strong", "label_smoothing": 0.1},
    "strong + mixup 0.2": {"augment": "strong", "mixup": 0.2},
    "strong + cosine lr": {"augment": "strong", "schedule": "cosine"},
    "small-resnet, strong + cosine": {
        "model": "small-resnet",
        "augment": "strong",
        "schedule": "cosine",
    },
    "strong + cosine + TTA": {"augment": "strong", "schedule": "cosine", "tta": True},
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--recipes", help="Comma-separated recipe numbers (1-based); default all.")
    args = parser.parse_args()
    if not args.data.exists():
        sys.exit(f"{args.data} is absent")
    chosen = list(RECIPES.items())
    if args.recipes:
        chosen = [chosen[int(i) - 1] for i in args.recipes.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        server = EmbeddedPostgres(home)
        engine = make_engine(server.ensure_running(announce=lambda _m: None))
        try:
            migrate.upgrade(engine)
            storage = LocalStorage(str(home / "images"))
            start = time.perf_counter()
            with Session(engine) as session, session.begin():
                loaded = load_skin_conditions(session, storage, args.data)
            tones = backfill_tones(engine, storage)
            print(
                f"loaded {loaded['images']} images, {loaded['near_duplicate_pairs']} near-copy "
                f"pairs; tones: {tones.estimated} estimated, {tones.no_skin} no skin "
                f"({time.perf_counter() - start:.0f} s)",
                flush=True,
            )
            lines, fairness_lines = [], []
            for label, recipe in chosen:
                options = TrainOptions(
                    task="condition",
                    image_size=args.image_size,
                    epochs=args.epochs,
                    seed=args.seed,
                    patience=6,
                    name=label,
                    **recipe,
                )
                start = time.perf_counter()
                run = run_training(engine, storage, options, home=home)
                t = run.test_metrics
                lines.append(
                    f"{label:<32} macro-F1 {t['f1_macro']:.3f} [{t['f1_macro_ci95'][0]:.3f}, "
                    f"{t['f1_macro_ci95'][1]:.3f}]  accuracy {t['accuracy']:.3f} "
                    f"[{t['accuracy_ci95'][0]:.3f}, {t['accuracy_ci95'][1]:.3f}]  n={t['n']}  "
                    f"best epoch {run.best_epoch}/{run.epochs_run}  "
                    f"{time.perf_counter() - start:.0f} s"
                )
                print(lines[-1], flush=True)
                gap = next(
                    (g for g in fairness_summary(run.per_group).gaps if g.group_by == "tone"), None
                )
                fairness_lines.append(
                    f"{label:<32} "
                    + (
                        f"worst tone {gap.worst_group} (n={gap.worst_support}) accuracy "
                        f"{gap.worst_accuracy:.3f} vs rest {gap.rest_accuracy:.3f}: gap "
                        f"{gap.gap:+.3f} [{gap.gap_low:+.3f}, {gap.gap_high:+.3f}]"
                        + (" FLAG" if gap.flagged else "")
                        if gap
                        else "no two tone groups of 5+ test images"
                    )
                )
            print(
                f"\nskin_conditions, {args.image_size} px, {args.epochs} epochs max, "
                f"seed {args.seed}, CPU (majority rate {t['majority_rate']:.3f}):"
            )
            print("\n".join(lines))
            print("\nfairness by estimated tone (ITA), worst group vs the rest:")
            print("\n".join(fairness_lines))
        finally:
            engine.dispose()
            server.stop()


if __name__ == "__main__":
    main()
