"""The verification queue: one item per image and task, with every candidate class its labels
name (two source files, exact copies filed under one class or several). A key per class
(1..9 for the commonest, `/` a type-to-filter picker for every class), Enter/Space to decide
the chosen class and move to the next undecided image, x to reject them all, s for severity,
Ctrl+Z to undo (also after commit).

A decision resolves all the item's labels in one operation through LabelService (`decide`,
`reject_all`) with the versions this screen showed, so one undo reverts it whole and a
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
from textual.widgets import Footer, Header, Input, OptionList, Static
from textual.widgets.option_list import Option

from skinctl.errors import NotFound
from skinctl.labels.views import (
    Candidate,
    LabelView,
    ModelSuggestion,
    OperationResult,
    QueueKey,
    versions_of,
)
from skinctl.tui.widgets.preview import ImagePreview, decode_for_preview
from skinctl.tui.worker import DatabaseWork

if TYPE_CHECKING:
    from collections.abc import Callable

    from PIL import Image

    from skinctl.labels import LabelService

PROGRESS_RECOUNT_SECONDS = 2.0  # exact recount once the user pauses this long
MAX_SKIP = 200  # items checked per query when advancing past images others decided
NUMBER_KEYS = 9


@dataclass
class QueueItem:
    position: int
    key: QueueKey
    candidates: list[Candidate]  # live labels of the task grouped by class, commonest first
    image_labels: list[LabelView]  # every label of the image (both tasks, rejected too)
    suggestion: ModelSuggestion | None
    classes: list[str]  # the task's classes, the ones with number keys first
    image: Image.Image | None
    image_error: str | None

    @property
    def label(self) -> LabelView:
        """The first label of the first candidate: the image's facts (dataset, path, split)."""
        if self.candidates:
            return self.candidates[0].labels[0]
        return next(lb for lb in self.image_labels if lb.task == self.key.task)

    @property
    def task_labels(self) -> list[LabelView]:
        return [lb for lb in self.image_labels if lb.task == self.key.task]

    @property
    def default_choice(self) -> str | None:
        """What Enter decides when no class was picked: the class most of its labels name."""
        return self.candidates[0].condition if self.candidates else None


def class_order(counts: dict[str, int], suggestion: ModelSuggestion | None) -> list[str]:
    """The task's classes with the model's suggestion first, then the commonest: the first nine
    get number keys, the rest are one `/` away."""
    names = list(counts)
    if suggestion is not None and suggestion.label in counts:
        names.remove(suggestion.label)
        names.insert(0, suggestion.label)
    return names


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


class ClassPicker(ModalScreen[str | None]):
    """Every class of the task: type to filter, arrows to move, Enter picks, Esc cancels."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="picker_cancel"),
        Binding("down", "move(1)", "Next", show=False, id="picker_next"),
        Binding("up", "move(-1)", "Previous", show=False, id="picker_previous"),
    ]

    def __init__(self, classes: list[str], counts: dict[str, int]) -> None:
        super().__init__()
        self.choices = classes  # not `classes`: that is every widget's CSS classes
        self.counts = counts

    def compose(self) -> ComposeResult:
        with Vertical(id="picker-box"):
            yield Static(
                f"Pick a class ({len(self.choices)}): type to filter · Enter picks · Esc cancels"
            )
            yield Input(placeholder="filter", id="picker-filter")
            yield OptionList(id="picker-list")

    def on_mount(self) -> None:
        self._fill("")
        self.query_one(Input).focus()

    def matches(self, text: str) -> list[str]:
        text = text.strip().lower()
        return [name for name in self.choices if text in name.lower()]

    def _fill(self, text: str) -> None:
        options = self.query_one(OptionList)
        options.clear_options()
        options.add_options(
            [
                Option(f"{escape(name)} · {self.counts.get(name, 0):,} labels", id=name)
                for name in self.matches(text)
            ]
        )
        if options.option_count:
            options.highlighted = 0

    def on_input_changed(self, event: Input.Changed) -> None:
        self._fill(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._pick()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_move(self, step: int) -> None:
        options = self.query_one(OptionList)
        if options.option_count:
            current = options.highlighted or 0
            options.highlighted = max(0, min(options.option_count - 1, current + step))

    def _pick(self) -> None:
        options = self.query_one(OptionList)
        if options.highlighted is None or not options.option_count:
            return
        self.dismiss(options.get_option_at_index(options.highlighted).id)

    def action_cancel(self) -> None:
        self.dismiss(None)


class QueueScreen(DatabaseWork, Screen):
    CSS_PATH = Path(__file__).with_suffix(".tcss")
    BINDINGS = [
        *[
            Binding(str(n), f"choose({n})", f"class {n}", show=False, id=f"queue_class_{n}")
            for n in range(1, NUMBER_KEYS + 1)
        ],
        Binding("slash", "pick_class", "All classes", id="queue_pick_class"),
        Binding("enter,space", "commit", "Decide", id="queue_verify"),
        Binding("x", "reject", "Reject all", id="queue_reject"),
        Binding("s", "severity", "Severity", id="queue_severity"),
        Binding("ctrl+z", "undo", "Undo", id="queue_undo"),
        Binding("left,up", "move(-1)", "Previous", id="queue_previous"),
        Binding("right,down", "move(1)", "Next", id="queue_next"),
        Binding("r", "reload", "Reload", id="queue_reload"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.keys: list[QueueKey] = []
        self.position = 0
        self.item: QueueItem | None = None
        self.chosen: str | None = None
        self.decided: set[QueueKey] = set()  # items acted on here (skipped when advancing)
        self.undo_stack: list[tuple[int, int]] = []  # (image id, queue position)
        self.busy = False
        self.progress: tuple[int, int] | None = None
        self.recounts = 0  # exact progress recounts done (tests wait on it)
        self.commit_seconds: list[float] = []  # action -> committed, for bench/tui.py
        self.commit_breakdown: list[tuple[float, float, float]] = []  # to worker, in worker, back
        self._class_cache: dict[str, dict[str, int]] = {}
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
    def service(self) -> LabelService:
        return self.app.labels

    @property
    def ids(self) -> list[QueueKey]:
        return self.keys

    def load_queue(self) -> None:
        service, filters, order = self.service, self.app.queue_filter, self.app.queue_order

        def job() -> tuple[list[QueueKey], tuple[int, int]]:
            return service.queue_items(filters, order=order), service.progress(filters)

        self.run_db(job, self._queue_loaded, group="queue")

    def _queue_loaded(self, result: tuple[list[QueueKey], tuple[int, int]]) -> None:
        self.keys, self.progress = result
        self.position = 0
        self._show_progress()
        if not self.keys:
            self.item = None
            self.query_one("#queue-label", Static).update(
                "Nothing to verify: every label in this queue is decided."
            )
            self.query_one("#queue-classes", Static).update("")
            self.query_one(ImagePreview).show(None, "queue is empty")
            return
        self.show_position(0, skip_decided=True)

    def _task_classes(self, task: str) -> dict[str, int]:
        if task not in self._class_cache:
            self._class_cache[task] = self.service.class_counts(task)
        return self._class_cache[task]

    def _load(self, position: int, key: QueueKey) -> QueueItem:
        """Runs in a worker: the image's labels, the model's suggestion, the image."""
        service = self.service
        image_labels = service.labels_of_image(key.image_id)
        candidates = service.candidates(key.image_id, key.task)
        suggestion = service.suggestion(key.image_id)
        image, error = None, None
        url = next((lb.image_url for lb in image_labels if lb.image_url), None)
        if url:
            try:
                image = decode_for_preview(self.app.read_image(url))
            except Exception as failure:  # noqa: BLE001 - a broken image must not stop the review
                error = f"cannot show the image: {failure}"
        classes = class_order(self._task_classes(key.task), suggestion)
        for candidate in candidates:  # a class someone just added is offered too
            if candidate.condition not in classes:
                classes.append(candidate.condition)
        return QueueItem(position, key, candidates, image_labels, suggestion, classes, image, error)

    def show_position(self, position: int, *, skip_decided: bool = False) -> None:
        """Show the item at `position`; with skip_decided, the first one from there that still
        has a pending label (someone else may have decided some meanwhile)."""
        if not self.keys:
            return
        keys, decided = list(self.keys), set(self.decided)

        def job() -> QueueItem | None:
            if not skip_decided:
                return self._load(position, keys[position]) if position < len(keys) else None
            start = position
            while start < len(keys):
                window = [
                    i
                    for i in range(start, min(len(keys), start + MAX_SKIP))
                    if keys[i] not in decided
                ]
                pending = self.service.pending_items(keys[i] for i in window)
                for pos in window:
                    if keys[pos] in pending:
                        return self._load(pos, keys[pos])
                start += MAX_SKIP
            return None

        self.run_db(job, self._shown, group="item")

    def _shown(self, item: QueueItem | None) -> None:
        if item is None:
            self.query_one("#queue-status", Static).update(
                "[b]End of the queue.[/b] Ctrl+Z undoes your last action."
            )
            return
        self.item, self.position = item, item.position
        self.chosen = item.default_choice
        self._render_item()

    # -- drawing ----------------------------------------------------------------------------
    # Separators travel inside the text next to them (" · acne", never a lone " " between two
    # styled pieces): a whitespace-only piece is dropped by screenshots and some terminals'
    # copy, and the words then run together ("1acne").

    def _show_progress(self) -> None:
        widget = self.query_one("#queue-progress", Static)
        if self.progress is None:
            return
        verified, total = self.progress
        where = (
            f"\n[dim]image {self.position + 1:,} of {len(self.keys):,} in this queue[/dim]"
            if self.keys
            else ""
        )
        widget.update(f"[b]{verified:,} / {total:,} labels verified[/b]{where}")

    def _render_item(self) -> None:
        item = self.item
        if item is None:
            return
        first = item.label
        self.query_one(ImagePreview).show(item.image, item.image_error or "no image")
        place = " · ".join(
            escape(part) for part in (first.dataset_source, first.split, first.local_path) if part
        )
        lines = [f"[b]image {item.key.image_id}[/b] · {place}", f"task {item.key.task}", ""]
        if not item.candidates:
            lines.append("[red]every label of this task is rejected[/red]")
        for candidate in item.candidates:
            colour = "green" if candidate.status == "verified" else "yellow"
            copies = len(candidate.labels)
            sources = ", ".join(sorted({lb.source for lb in candidate.labels}))
            severity = next(
                (lb.severity_level for lb in candidate.labels if lb.severity_level), None
            )
            lines.append(
                f"[b]{escape(candidate.condition)}[/b][{colour}] {candidate.status}[/]"
                + f" · {copies} labels" * (copies > 1)
                + f" · {escape(sources)}"
                + (f" · severity {escape(severity)}" if severity else "")
            )
        if len(item.candidates) > 1:
            lines.append("[dim]its labels disagree: one decision settles them all[/dim]")
        self.query_one("#queue-label", Static).update("\n".join(lines))
        suggestion = item.suggestion
        if suggestion:
            confidence = (
                f" {suggestion.confidence:.0%}" if suggestion.confidence is not None else ""
            )
            score = (
                f" · mislabel score {suggestion.mislabel_score:.2f}"
                if suggestion.mislabel_score is not None
                else ""
            )
            text = f"model suggests [b]{escape(suggestion.label)}[/b]{confidence}{score}"
        else:
            text = "[dim]no model suggestion yet[/dim]"
        self.query_one("#queue-suggestion", Static).update(text)
        self._render_classes()
        self._show_progress()

    def _render_classes(self) -> None:
        item = self.item
        if item is None:
            return
        given = {candidate.condition for candidate in item.candidates}
        parts = []
        for n, name in enumerate(item.classes[:NUMBER_KEYS], start=1):
            key = self._key_for(f"queue_class_{n}", str(n))
            mark = "*" if name in given else ""
            if name == self.chosen:
                parts.append(f"[b reverse]{key} {escape(name)}{mark}[/]")
            else:
                parts.append(f"[b]{key}[/b] {escape(name)}{mark}")
        rest = len(item.classes) - NUMBER_KEYS
        pick = self._key_for("queue_pick_class", "/")
        lines = [" · ".join(parts)]
        if rest > 0:
            lines.append(f"{pick}: {rest} more classes (type to filter)")
        if self.chosen and self.chosen not in item.classes[:NUMBER_KEYS]:
            lines.append(f"chosen: [b reverse]{escape(self.chosen)}[/]")
        enter = self._key_for("queue_verify", "enter")
        action = f"{enter}: {escape(self.chosen)} is right" if self.chosen else f"{enter}: -"
        lines.append(f"[dim]{action} · x all wrong · ctrl+z undo · *: a label says so[/dim]")
        self.query_one("#queue-classes", Static).update("\n".join(lines))

    def _key_for(self, binding_id: str, default: str) -> str:
        keys = self.app._keymap.get(binding_id) if hasattr(self.app, "_keymap") else None
        return keys.split(",")[0] if keys else default

    def _status(self, message: str) -> None:
        self.query_one("#queue-status", Static).update(message)

    # -- actions ----------------------------------------------------------------------------

    def action_choose(self, number: int) -> None:
        if self.item is None or number > min(NUMBER_KEYS, len(self.item.classes)):
            return
        self.chosen = self.item.classes[number - 1]
        self._render_classes()

    def action_pick_class(self) -> None:
        if self.item is None:
            return

        def picked(name: str | None) -> None:
            if name:
                self.chosen = name
                self._render_classes()

        counts = self._class_cache.get(self.item.key.task, {})
        self.app.push_screen(ClassPicker(sorted(self.item.classes), counts), picked)

    def _count_locally(self, verified: int, added: int) -> None:
        """Move the progress at once; the exact recount follows when the user pauses."""
        if self.progress is not None:
            self.progress = (self.progress[0] + verified, self.progress[1] + added)
            self._show_progress()

    def _change(
        self,
        job: Callable[[], OperationResult],
        message: str,
        *,
        advance: bool,
        counts: tuple[int, int] = (0, 0),
    ) -> None:
        """Commit `job` in a worker; then advance (or reload). A conflict reloads the item."""
        if self.item is None or self.busy:
            return
        self.busy = True
        item, started = self.item, time.perf_counter()
        marks: dict[str, float] = {}

        def timed() -> OperationResult:
            marks["job_start"] = time.perf_counter()
            try:
                return job()
            finally:
                marks["job_end"] = time.perf_counter()

        def done(result: OperationResult) -> None:
            now = time.perf_counter()
            self.commit_seconds.append(now - started)
            self.commit_breakdown.append(
                (
                    marks["job_start"] - started,
                    marks["job_end"] - marks["job_start"],
                    now - marks["job_end"],
                )
            )
            self.busy = False
            self.decided.add(item.key)
            self.undo_stack.append((item.key.image_id, item.position))
            self._status(message)
            self._count_locally(*counts)
            self._refresh_progress_soon()
            if advance:
                self.show_position(item.position + 1, skip_decided=True)
            else:
                self.show_position(item.position)

        def failed(_error: BaseException) -> None:
            self.busy = False
            self.show_position(item.position)  # show what is there now

        self.run_db(timed, done, group="commit", exclusive=False, retry=False, on_error=failed)

    def action_commit(self) -> None:
        item, chosen = self.item, self.chosen
        if item is None or chosen is None:
            return
        key, seen, service = item.key, versions_of(item.task_labels), self.service
        live = [lb for c in item.candidates for lb in c.labels]
        verified_before = sum(lb.status == "verified" for lb in live)
        agreeing = [lb for lb in live if lb.condition_type == chosen]
        counts = (max(len(agreeing), 1) - verified_before, 0 if agreeing else 1)
        others = sorted({c.condition for c in item.candidates} - {chosen})
        message = f"image {key.image_id}: {escape(chosen)}" + (
            f" (over {escape(', '.join(others))})" if others else ""
        )
        self._change(
            lambda: service.decide(key.image_id, key.task, chosen, seen=seen, note="review"),
            message,
            advance=True,
            counts=counts,
        )

    def action_reject(self) -> None:
        item = self.item
        if item is None or not item.candidates:
            return  # nothing live to reject
        key, seen, service = item.key, versions_of(item.task_labels), self.service
        verified_before = sum(lb.status == "verified" for c in item.candidates for lb in c.labels)
        self._change(
            lambda: service.reject_all(
                key.image_id, key.task, seen=seen, reason="rejected in review"
            ),
            f"image {key.image_id}: every {key.task} label rejected",
            advance=True,
            counts=(-verified_before, 0),
        )

    def action_severity(self) -> None:
        if self.item is None or self.busy:
            return
        candidate = next((c for c in self.item.candidates if c.condition == self.chosen), None)
        if candidate is None:
            self._status("severity applies to a class the image's labels name")
            return
        label, service = candidate.labels[0], self.service

        def chosen(value: str | None) -> None:
            if value is None:
                return
            self._change(
                lambda: service.set_severity(label.id, value, label.version),
                f"severity of {escape(label.condition_type)} on image {label.image_id}: {escape(value) or 'none'}",
                advance=False,
            )

        self.app.push_screen(SeverityScreen(label.severity_level), chosen)

    def action_undo(self) -> None:
        if self.busy:
            return
        if self.undo_stack:
            image_id, position = self.undo_stack[-1]
        elif self.item is not None:
            image_id, position = self.item.key.image_id, self.position
        else:
            return
        service = self.service
        self.busy = True

        def done(result: OperationResult) -> None:
            self.busy = False
            if self.undo_stack and self.undo_stack[-1] == (image_id, position):
                self.undo_stack.pop()
            for label in result.labels:
                if label.image_id is not None:  # queue labels always belong to an image
                    self.decided.discard(QueueKey(label.image_id, label.task))
            self._status(f"undone on image {image_id}")
            self._refresh_progress_soon()
            self.show_position(position)

        def failed(error: BaseException) -> None:
            self.busy = False
            if (
                isinstance(error, NotFound)
                and self.undo_stack
                and self.undo_stack[-1] == (image_id, position)
            ):
                self.undo_stack.pop()

        self.run_db(
            lambda: service.undo(image_id=image_id),
            done,
            group="commit",
            exclusive=False,
            retry=False,
            on_error=failed,
        )

    def action_move(self, step: int) -> None:
        if not self.keys:
            return
        target = max(0, min(len(self.keys) - 1, self.position + step))
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

        def done(progress: tuple[int, int]) -> None:
            self.progress = progress
            self.recounts += 1
            self._show_progress()

        self.run_db(lambda: service.progress(filters), done, group="progress")
