"""TUI tests drive the real app headlessly (App.run_test + Pilot) against the test PostgreSQL.
Images are drawn with the explicit half-cell renderer so snapshots are stable."""

from __future__ import annotations

import asyncio
import functools
from datetime import datetime

import pytest
from sqlalchemy.orm import Session
from textual.worker import WorkerCancelled

from skinctl.db.models import TrainingRun
from tests.labels.factory import add_duplicate, add_images

SIZE = (120, 36)


def run_async(test):
    """Run an async test function with asyncio (no async pytest plugin needed)."""

    @functools.wraps(test)
    def wrapper(*args, **kwargs):
        return asyncio.run(test(*args, **kwargs))

    return wrapper


async def settle(pilot, rounds: int = 40) -> None:
    """Wait until no worker is running and the UI has processed what they posted."""
    app = pilot.app
    for _ in range(rounds):
        await pilot.pause()
        try:
            await app.workers.wait_for_complete()
        except WorkerCancelled:  # superseded by a newer request (a filter changed again)
            pass
        await pilot.pause(0.02)
        if not any(w.is_running for w in app.workers) and not app._timers:
            break
    await pilot.pause()


async def wait_for(pilot, condition, timeout: float = 10.0) -> None:
    """Let the app run until `condition()` holds (a state the test expects, e.g. a worker's
    result shown); fail after `timeout` seconds instead of sleeping a guessed time."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {condition}")
        await pilot.pause(0.02)


def screen_lines(app) -> list[str]:
    """The screen as a screenshot shows it: per row, the text of its pieces joined as drawn.
    A whitespace-only piece between two styled ones is not drawn in a screenshot (nor kept by
    some terminals' copy), so words separated only by such a piece run together here."""
    import html
    import re

    rows: dict[float, list[tuple[float, str]]] = {}
    for match in re.finditer(
        r'<text class="[^"]*" x="([\d.]+)" y="([\d.]+)"[^>]*>(.*?)</text>', app.export_screenshot()
    ):
        rows.setdefault(float(match.group(2)), []).append(
            (float(match.group(1)), html.unescape(match.group(3)))
        )
    return [
        "".join(t for _, t in sorted(pieces)).replace("\xa0", " ")
        for _, pieces in sorted(rows.items())
    ]


def text_of(widget) -> str:
    """The plain text a widget shows (markup strings and Rich renderables alike)."""
    import io

    from rich.console import Console

    shown = widget.render()
    if hasattr(shown, "plain"):
        return shown.plain
    shown = getattr(shown, "_renderable", shown)  # Textual wraps Rich renderables in a RichVisual
    console = Console(width=120, file=io.StringIO(), record=True)
    console.print(shown)
    return console.export_text()


def make_app(settings, engine, storage_dir, **kwargs):
    from skinctl.storage.local import LocalStorage
    from skinctl.tui.app import SkinctlApp

    return SkinctlApp(
        settings,
        engine,
        storage=LocalStorage(str(storage_dir)),
        image_renderer="halfcell",
        **kwargs,
    )


@pytest.fixture
def images(engine, tmp_path):
    """Six images: derm (acne, eczema, acne, rosacea) and faces (milia, acne); one near-duplicate
    pair with different labels (1 acne ~ 2 eczema), one quality flag."""
    data = add_images(
        engine,
        tmp_path / "store",
        [
            ("derm", "acne", "train"),
            ("derm", "eczema", "train"),
            ("derm", "acne", "valid"),
            ("derm", "rosacea", "test"),
            ("faces", "milia", None),
            ("faces", "acne", None),
        ],
    )
    add_duplicate(engine, data.images[0], data.images[1], 3)
    with engine.begin() as connection:
        from sqlalchemy import text

        connection.execute(
            text("UPDATE ml_training_images SET quality_flags = '{dark}' WHERE id = :i"),
            {"i": data.images[4]},
        )
    data.storage_dir = tmp_path / "store"
    return data


@pytest.fixture
def runs(engine):
    """Two runs written by hand with only the plan's columns (+ JSON history in hyperparameters)."""
    with Session(engine) as session:
        session.add_all(
            [
                TrainingRun(
                    model_name="condition-cnn",
                    version="1",
                    training_date=datetime(2026, 11, 1, 9, 30),
                    dataset_size=3152,
                    accuracy=0.71,
                    precision_score=0.70,
                    recall=0.69,
                    f1_score=0.695,
                    training_duration_minutes=12,
                    hyperparameters={
                        "lr": 0.001,
                        "history": {
                            "loss": [1.2, 0.9, 0.7, 0.65],
                            "val_loss": [1.3, 1.0, 0.85, 0.9],
                        },
                        "per_class": {
                            "acne": {"precision": 0.8, "recall": 0.7, "f1": 0.75, "support": 40},
                            "eczema": {"precision": 0.6, "recall": 0.68, "f1": 0.64, "support": 30},
                        },
                        "confusion_matrix": {
                            "labels": ["acne", "eczema"],
                            "matrix": [[28, 12], [9, 21]],
                        },
                    },
                    notes="first try",
                ),
                TrainingRun(
                    model_name="condition-cnn",
                    version="2",
                    training_date=datetime(2026, 11, 2, 10, 0),
                    dataset_size=3400,
                    accuracy=0.78,
                    precision_score=0.77,
                    recall=0.74,
                    f1_score=0.755,
                    training_duration_minutes=15,
                ),
            ]
        )
        session.commit()
