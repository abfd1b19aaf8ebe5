"""The verification queue: one image at a time, a key per class, Enter/Space to verify and move
to the next unverified image, x to reject, s for severity, Ctrl+Z to undo (also after commit).

Every action commits at once through LabelService with the version this screen showed, so a
concurrent change by someone else becomes a conflict notice (and a reload), never a lost update.
Nothing asks for confirmation: everything is undoable.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Header, Input, Static

from skinctl.errors import NotFound
from skinctl.labels.views import LabelView, ModelSuggestion, versions_of
from skinctl.tui.widgets.preview import ImagePreview, decode_for_preview
from skinctl.tui.worker import DatabaseWork

if TYPE_CHECKING:
    from PIL import Image

PROGRESS_RECOUNT_SECONDS = 2.0  # exact recount once the user pauses this long
MAX_SKIP = 200  # statuses read per query when advancing past labels others decided


@dataclass
class QueueItem:
    position: int
    label: LabelView
    image_labels: list[LabelView]
    suggestion: ModelSuggestion | None
    classes: list[str]
    image: Image.Image | None
    image_error: str | None


class SeverityScreen(ModalScreen[str | None]):
    """A one-line prompt for the severity; Enter saves, Esc cancels (nothing is changed)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="severity_cancel")]

    def __init__(self, current: str | None) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="severity-box"):
            yield Static("Severity (empty clears it); Enter saves, Esc cancels")
            yield Input(value=self.current or "", id="severity-input")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class QueueScreen(DatabaseWork, Screen):
    CSS_PATH = Path(__file__).with_suffix(".tcss")
    BINDINGS = [
        *[
            Binding(str(n), f"choose({n})", f"class {n}", show=False, id=f"queue_class_{n}")
            for n in range(1, 10)
        ],
        Binding("enter,space", "commit", "Verify / save class", id="queue_verify"),
        Binding("x", "reject", "Reject", id="queue_reject"),
        Binding("s", "severity", "Severity", id="queue_severity"),
        Binding("ctrl+z", "undo", "Undo", id="queue_undo"),
        Binding("left,up", "move(-1)", "Previous", id="queue_previous"),
        Binding("right,down", "move(1)", "Next", id="queue_next"),
        Binding("r", "reload", "Reload", id="queue_reload"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[int] = []
        self.position = 0
        self.item: QueueItem | None = None
        self.chosen: str | None = None
        self.decided: set[int] = set()  # label ids acted on here (skipped when advancing)
        self.undo_stack: list[tuple[int, int]] = []  # (image id, queue position)
        self.busy = False
        self.progress: tuple[int, int] | None = None
        self.commit_seconds: list[float] = []  # action -> committed, for bench/tui.py
        self.commit_breakdown: list[tuple[float, float, float]] = []  # to worker, in worker, back
        self._class_cache: dict[str, list[str]] = {}
        self._progress_timer = None

    # -- layout -----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="queue-body"):
            yield ImagePreview(self.app.image_renderer, id="queue-image")
            with Vertical(id="queue-side"):
                yield Static("loading queue…", id="queue-progress")
                yield Static("", id="queue-label")
                yield Static("", id="queue-suggestion")
                yield Static("", id="queue-classes")
                yield Static("", id="queue-status")
        yield Footer()

    def on_mount(self) -> None:
        self.load_queue()

    # -- loading ----------------------------------------------------------------------------

    @property
    def service(self):
        return self.app.labels

    def load_queue(self) -> None:
        service, filters, order = self.service, self.app.queue_filter, self.app.queue_order

        def job():
            return service.queue(filters, order=order), service.progress(filters)

        self.run_db(job, self._queue_loaded, group="queue")

    def _queue_loaded(self, result) -> None:
        self.ids, self.progress = result
        self.position = 0
        self._show_progress()
        if not self.ids:
            self.item = None
            self.query_one("#queue-label", Static).update("Nothing to verify: every label in this queue is decided.")
            self.query_one(ImagePreview).show(None, "queue is empty")
            return
        self.show_position(0, skip_decided=True)

    def _task_classes(self, task: str) -> list[str]:
        if task not in self._class_cache:
            self._class_cache[task] = self.service.classes(task)
        return self._class_cache[task]

    def _load(self, position: int, label_id: int) -> QueueItem:
        """Runs in a worker: the label, its image's labels, the model's suggestion, the image."""
        service = self.service
        label = service.get(label_id)
        image_labels = service.labels_of_image(label.image_id) if label.image_id else [label]
        image, error = None, None
        if label.image_url:
            try:
                image = decode_for_preview(self.app.read_image(label.image_url))
            except Exception as failure:  # noqa: BLE001 - a broken image must not stop the review
                error = f"cannot show the image: {failure}"
        return QueueItem(
            position, label, image_labels, service.suggestion(label.image_id) if label.image_id else None,
            self._task_classes(label.task)[:9], image, error,
        )

    def show_position(self, position: int, *, skip_decided: bool = False) -> None:
        """Show the label at `position`; with skip_decided, the first one from there that is
        still pending (someone else may have decided some meanwhile)."""
        if not self.ids:
            return
        ids, decided = list(self.ids), set(self.decided)

        def job() -> QueueItem | None:
            if not skip_decided:
                return self._load(position, ids[position]) if position < len(ids) else None
            start = position
            while start < len(ids):
                window = [i for i in range(start, min(len(ids), start + MAX_SKIP)) if ids[i] not in decided]
                statuses = self.service.statuses([ids[i] for i in window]) if window else {}
                for pos in window:
                    if statuses.get(ids[pos]) == "pending":
                        item = self._load(pos, ids[pos])
                        if item.label.status == "pending":  # still, a moment later
                            return item
                start += MAX_SKIP
            return None

        self.run_db(job, self._shown, group="item")

    def _shown(self, item: QueueItem | None) -> None:
        if item is None:
            self.query_one("#queue-status", Static).update("[b]End of the queue.[/b] Ctrl+Z undoes your last action.")
            return
        self.item, self.position, self.chosen = item, item.position, None
        self._render_item()

    # -- drawing ----------------------------------------------------------------------------

    def _show_progress(self) -> None:
        widget = self.query_one("#queue-progress", Static)
        if self.progress is None:
            return
        verified, total = self.progress
        where = f"\n[dim]item {self.position + 1:,} of {len(self.ids):,} in this queue[/dim]" if self.ids else ""
        widget.update(f"[b]{verified:,} / {total:,} verified[/b]{where}")

    def _render_item(self) -> None:
        item = self.item
        if item is None:
            return
        label = item.label
        self.query_one(ImagePreview).show(item.image, item.image_error or "no image")
        status_colour = {"verified": "green", "rejected": "red"}.get(label.status, "yellow")
        others = [lb for lb in item.image_labels if lb.id != label.id]
        lines = [
            f"[b]image {label.image_id}[/b]  {escape(label.dataset_source or '')}  {escape(label.local_path or '')}",
            f"label {label.id} v{label.version}  task {label.task}  source {label.source}",
            "",
            f"[b reverse] {escape(label.condition_type)} [/]  [{status_colour}]{label.status}[/]"
            + (f"  severity {escape(label.severity_level)}" if label.severity_level else ""),
        ]
        if label.verified_by:
            lines.append(f"by {escape(label.verified_by)}")
        if others:
            lines.append("other labels: " + ", ".join(f"{escape(lb.condition_type)} ({lb.status})" for lb in others))
        self.query_one("#queue-label", Static).update("\n".join(lines))
        suggestion = item.suggestion
        if suggestion:
            confidence = f" {suggestion.confidence:.0%}" if suggestion.confidence is not None else ""
            score = f"  mislabel score {suggestion.mislabel_score:.2f}" if suggestion.mislabel_score is not None else ""
            text = f"model suggests [b]{escape(suggestion.label)}[/b]{confidence}{score}"
        else:
            text = "[dim]no model suggestion yet[/dim]"
        self.query_one("#queue-suggestion", Static).update(text)
        self._render_classes()
        self._show_progress()

    def _render_classes(self) -> None:
        if self.item is None:
            return
        parts = []
        for n, name in enumerate(self.item.classes, start=1):
            key = self._key_for(f"queue_class_{n}", str(n))
            if name == self.chosen:
                parts.append(f"[b reverse] {key} {escape(name)} [/]")
            elif name == self.item.label.condition_type:
                parts.append(f"[b]{key}[/b] [u]{escape(name)}[/u]")
            else:
                parts.append(f"[b]{key}[/b] {escape(name)}")
        enter = self._key_for("queue_verify", "enter")
        action = f"{enter}: save {escape(self.chosen)}" if self.chosen and self.chosen != self.item.label.condition_type else f"{enter}: verify"
        self.query_one("#queue-classes", Static).update("  ".join(parts) + f"\n[dim]{action}   x reject   s severity   ctrl+z undo[/dim]")

    def _key_for(self, binding_id: str, default: str) -> str:
        keys = self.app._keymap.get(binding_id) if hasattr(self.app, "_keymap") else None
        return keys.split(",")[0] if keys else default

    def _status(self, message: str) -> None:
        self.query_one("#queue-status", Static).update(message)

    # -- actions ----------------------------------------------------------------------------

    def action_choose(self, number: int) -> None:
        if self.item is None or number > len(self.item.classes):
            return
        name = self.item.classes[number - 1]
        self.chosen = None if self.chosen == name else name
        self._render_classes()

    def _count_locally(self, verified: int, added: int) -> None:
        """Move the progress at once; the exact recount follows when the user pauses."""
        if self.progress is not None:
            self.progress = (self.progress[0] + verified, self.progress[1] + added)
            self._show_progress()

    def _change(self, job, message: str, *, advance: bool, counts: tuple[int, int] = (0, 0)) -> None:
        """Commit `job` in a worker; then advance (or reload). A conflict reloads the label."""
        if self.item is None or self.busy:
            return
        self.busy = True
        item, started = self.item, time.perf_counter()
        marks: dict[str, float] = {}

        def timed():
            marks["job_start"] = time.perf_counter()
            try:
                return job()
            finally:
                marks["job_end"] = time.perf_counter()

        def done(result) -> None:
            now = time.perf_counter()
            self.commit_seconds.append(now - started)
            self.commit_breakdown.append(
                (marks["job_start"] - started, marks["job_end"] - marks["job_start"], now - marks["job_end"])
            )
            self.busy = False
            self.decided.add(item.label.id)
            self.undo_stack.append((item.label.image_id, item.position))
            self._status(message)
            self._count_locally(*counts)
            self._refresh_progress_soon()
            if advance:
                self.show_position(item.position + 1, skip_decided=True)
            else:
                self.show_position(item.position)

        def failed(_error) -> None:
            self.busy = False
            self.show_position(item.position)  # show what is there now

        self.run_db(timed, done, group="commit", exclusive=False, retry=False, on_error=failed)

    def action_commit(self) -> None:
        if self.item is None:
            return
        label, chosen, seen = self.item.label, self.chosen, versions_of(self.item.image_labels)
        service = self.service
        was_verified = int(label.status == "verified")
        if chosen is None or chosen == label.condition_type:
            self._change(
                lambda: service.verify(label.id, label.version), f"verified {escape(label.condition_type)} (label {label.id})",
                advance=True, counts=(1 - was_verified, 0),
            )
        else:
            existing = any(lb.condition_type == chosen and lb.task == label.task for lb in self.item.image_labels)
            self._change(
                lambda: service.set_condition(label.image_id, chosen, task=label.task, seen=seen, note="review"),
                f"image {label.image_id}: {escape(label.condition_type)} → {escape(chosen)}",
                advance=True, counts=(1 - was_verified, 0 if existing else 1),
            )

    def action_reject(self) -> None:
        if self.item is None:
            return
        label, service = self.item.label, self.service
        self._change(
            lambda: service.reject(label.id, label.version, reason="rejected in review"),
            f"rejected {escape(label.condition_type)} (label {label.id})",
            advance=True, counts=(-int(label.status == "verified"), 0),
        )

    def action_severity(self) -> None:
        if self.item is None or self.busy:
            return
        label, service = self.item.label, self.service

        def chosen(value: str | None) -> None:
            if value is None:
                return
            self._change(lambda: service.set_severity(label.id, value, label.version), f"severity of label {label.id}: {escape(value) or 'none'}", advance=False)

        self.app.push_screen(SeverityScreen(label.severity_level), chosen)

    def action_undo(self) -> None:
        if self.busy:
            return
        if self.undo_stack:
            image_id, position = self.undo_stack[-1]
        elif self.item is not None and self.item.label.image_id is not None:
            image_id, position = self.item.label.image_id, self.position
        else:
            return
        service = self.service
        self.busy = True

        def done(result) -> None:
            self.busy = False
            if self.undo_stack and self.undo_stack[-1] == (image_id, position):
                self.undo_stack.pop()
            for label in result.labels:
                self.decided.discard(label.id)
            self._status(f"undone on image {image_id}")
            self._refresh_progress_soon()
            self.show_position(position)

        def failed(error) -> None:
            self.busy = False
            if isinstance(error, NotFound) and self.undo_stack and self.undo_stack[-1] == (image_id, position):
                self.undo_stack.pop()

        self.run_db(lambda: service.undo(image_id=image_id), done, group="commit", exclusive=False, retry=False, on_error=failed)

    def action_move(self, step: int) -> None:
        if not self.ids:
            return
        target = max(0, min(len(self.ids) - 1, self.position + step))
        if target != self.position or self.item is None:
            self.position = target
            self.show_position(target)

    def action_reload(self) -> None:
        self._class_cache.clear()
        self.decided.clear()
        self.load_queue()

    def _refresh_progress_soon(self) -> None:
        """Recount once the user pauses, not after each action: counting 100k labels on every
        keypress would compete with the commits themselves (the count moves locally meanwhile)."""
        if self._progress_timer is not None:
            self._progress_timer.stop()
        self._progress_timer = self.set_timer(PROGRESS_RECOUNT_SECONDS, self._refresh_progress)

    def _refresh_progress(self) -> None:
        service, filters = self.service, self.app.queue_filter

        def done(progress) -> None:
            self.progress = progress
            self._show_progress()

        self.run_db(lambda: service.progress(filters), done, group="progress")
