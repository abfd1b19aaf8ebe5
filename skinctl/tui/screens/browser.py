"""The image browser: a filterable table of images, keyset-paginated (pages of 100 are fetched
as the cursor nears the end, so 100,000 images open as fast as 100), a preview, and a side
panel with metadata, labels, duplicates and history of the highlighted image."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.coordinate import Coordinate
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Checkbox, DataTable, Footer, Header, Select, Static

from skinctl.tui.queries import (
    PAGE_SIZE,
    FilterChoices,
    ImageDetail,
    ImageFilter,
    ImageRow,
    PagePosition,
    count_images,
    filter_choices,
    image_detail,
    image_page,
)
from skinctl.tui.widgets.preview import ImagePreview, decode_for_preview
from skinctl.tui.worker import DatabaseWork

if TYPE_CHECKING:
    from PIL import Image

    from skinctl.labels.views import HistoryEntry, LabelView

    # (image id, detail, labels, recent history, decoded image, why there is no image)
    DetailResult = tuple[
        int, ImageDetail | None, list[LabelView], list[HistoryEntry], Image.Image | None, str | None
    ]

PREFETCH_ROWS = 20  # fetch the next page when the cursor is this close to the last row
COLUMNS = (
    "id",
    "dataset",
    "split",
    "labels",
    "status",
    "size",
    "flags",
    "dups",
    "predicted",
    "score",
)
# Select id -> (ImageFilter field, type of its value)
FILTERS = {
    "filter-dataset": ("dataset", str),
    "filter-class": ("condition", str),
    "filter-verified": ("verified", str),
    "filter-flag": ("flag", str),
    "filter-split": ("split", str),
    "filter-skin-type": ("skin_type", str),
    "filter-fitzpatrick": ("fitzpatrick", int),
    "filter-tone": ("tone", str),
    "filter-run": ("run_id", int),
    "filter-predicted": ("predicted", str),
}


class BrowserScreen(DatabaseWork, Screen):
    CSS_PATH = Path(__file__).with_suffix(".tcss")
    BINDINGS = [
        Binding("f", "focus_filters", "Filters", id="browser_filters"),
        Binding("t", "focus_table", "Table", id="browser_table"),
        Binding("c", "clear_filters", "Clear filters", id="browser_clear"),
        Binding("v", "review_image", "Review in queue", id="browser_review"),
        Binding("r", "reload", "Reload", id="browser_reload"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.filter = ImageFilter()
        self.last_position: PagePosition | None = None  # where the loaded rows end (keyset)
        self.exhausted = False
        self.loading = False
        self.generation = 0  # bumps on filter change: late pages of an old filter are dropped
        self._detail_timer: Timer | None = None
        self.first_page_shown = False

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="browser-filters"):
            yield Select([], prompt="dataset", id="filter-dataset")
            yield Select([], prompt="class", id="filter-class")
            yield Select(
                [("verified", "verified"), ("unverified", "unverified")],
                prompt="review",
                id="filter-verified",
            )
            yield Select([], prompt="quality flag", id="filter-flag")
            yield Checkbox("duplicates", id="filter-duplicates")
            yield Static("", id="browser-count")
        with Horizontal(id="browser-filters-2", classes="browser-filters"):
            yield Select([], prompt="split", id="filter-split")
            yield Select([], prompt="skin type", id="filter-skin-type")
            yield Select([], prompt="Fitzpatrick", id="filter-fitzpatrick")
            yield Select([], prompt="est. tone", id="filter-tone")
            yield Select([], prompt="by run score", id="filter-run")
            yield Select([], prompt="predicted", id="filter-predicted")
        with Horizontal(id="browser-body"):
            yield DataTable(id="browser-table", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="browser-side"):
                yield ImagePreview(self.app.image_renderer, id="browser-image")
                yield Static("", id="browser-meta")
                yield Static("", id="browser-labels")
                yield Static("", id="browser-duplicates")
                yield Static("", id="browser-history")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for column in COLUMNS:
            table.add_column(column, key=column)
        self.reload()
        table.focus()

    def _choices_loaded(self, choices: FilterChoices) -> None:
        options = {
            "#filter-dataset": [(v, v) for v in choices.datasets],
            "#filter-class": [(v, v) for v in choices.classes],
            "#filter-flag": [(v, v) for v in choices.flags],
            "#filter-split": [(v, v) for v in choices.splits],
            "#filter-skin-type": [(v, v) for v in choices.skin_types],
            "#filter-fitzpatrick": [(f"Fitzpatrick {v}", str(v)) for v in choices.fitzpatrick],
            "#filter-tone": [(v.replace("_", " "), v) for v in choices.tones],
            "#filter-run": [(f"run {name}", str(run_id)) for run_id, name in choices.runs],
            "#filter-predicted": [(v, v) for v in choices.predicted],
        }
        for widget_id, pairs in options.items():
            select = self.query_one(widget_id, Select)
            current = select.value
            with self.prevent(Select.Changed):
                select.set_options(pairs)
                if current in [value for _, value in pairs]:
                    select.value = current

    # -- paging -----------------------------------------------------------------------------

    def reload(self) -> None:
        self.generation += 1
        self.last_position, self.exhausted, self.loading = None, False, False
        self.query_one(DataTable).clear()
        self.query_one("#browser-count", Static).update("…")
        self.load_page()  # the count and the filter choices follow the first page (_page_loaded)

    def _counted(self, count: int) -> None:
        self.query_one("#browser-count", Static).update(f"{count:,} images")

    def load_page(self) -> None:
        if self.loading or self.exhausted:
            return
        self.loading = True
        engine, f, after, generation = (
            self.app.engine,
            self.filter,
            self.last_position,
            self.generation,
        )
        early = self.app.take_first_page() if after is None and f == ImageFilter() else None
        if early is not None and early.done() and early.exception() is None:
            self._page_loaded((generation, early.result()))  # rows in the very first frame
            return

        def job() -> tuple[int, list[ImageRow]]:
            if early is not None:
                try:
                    return generation, early.result()
                except Exception:  # noqa: BLE001 - the early read failed: read again, with retries
                    pass
            return generation, image_page(engine, f, after)

        self.run_db(job, self._page_loaded, group="page")

    def _page_loaded(self, result: tuple[int, list[ImageRow]]) -> None:
        generation, rows = result
        if generation != self.generation:
            return
        first_of_filter = self.last_position is None
        self.loading = False
        table = self.query_one(DataTable)
        for row in rows:
            table.add_row(
                str(row.id),
                row.dataset,
                row.split or "",
                row.labels,
                row.status,
                row.size,
                row.flags,
                str(row.duplicates) if row.duplicates else "",
                row.predicted or "",
                f"{row.score:.2f}" if row.score is not None else "",
                key=str(row.id),
            )
        if rows:
            self.last_position = rows[-1].position
        self.exhausted = len(rows) < PAGE_SIZE
        if first_of_filter:
            # The slower whole-table queries and the first preview (which imports PIL) start once
            # the frame with these rows is drawn: their threads would otherwise compete with it.
            engine, f = self.app.engine, self.filter
            self.call_after_refresh(
                self.run_db, lambda: count_images(engine, f), self._counted, group="count"
            )
            if not self.first_page_shown:
                self.call_after_refresh(
                    self.run_db,
                    lambda: filter_choices(engine),
                    self._choices_loaded,
                    group="choices",
                )
        self.first_page_shown = True
        if table.row_count and table.cursor_row == 0 and len(rows) == table.row_count:
            self.call_after_refresh(self._schedule_detail, rows[0].id)
        if not table.row_count:
            self.query_one(ImagePreview).show(None, "no images match these filters")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        table = event.data_table
        if event.cursor_row >= table.row_count - PREFETCH_ROWS:
            self.load_page()
        if event.row_key is not None and event.row_key.value is not None:
            self._schedule_detail(int(event.row_key.value))

    # -- side panel -------------------------------------------------------------------------

    def _schedule_detail(self, image_id: int) -> None:
        """Load details shortly after the cursor stops: holding an arrow key stays smooth."""
        if self._detail_timer is not None:
            self._detail_timer.stop()
        self._detail_timer = self.set_timer(0.08, lambda: self._load_detail(image_id))

    def _load_detail(self, image_id: int) -> None:
        app = self.app

        def job() -> DetailResult:
            detail = image_detail(app.engine, image_id)
            if detail is None:
                return image_id, None, [], [], None, "image not found"
            labels = app.labels.labels_of_image(image_id)
            history = app.labels.history(image_id=image_id)[-8:]
            try:
                image, error = decode_for_preview(app.read_image(detail.image_url)), None
            except Exception as failure:  # noqa: BLE001 - show why, keep browsing
                image, error = None, f"cannot show the image: {failure}"
            return image_id, detail, labels, history, image, error

        self.run_db(job, self._detail_loaded, group="detail")

    def _detail_loaded(self, result: DetailResult) -> None:
        image_id, detail, labels, history, image, error = result
        self.query_one(ImagePreview).show(image, error or "no image")
        if detail is None:
            self.query_one("#browser-meta", Static).update(error or "")
            return
        meta = [f"[b]image {image_id}[/b]"] + [
            f"{k:<8} {escape(v)}" for k, v in detail.fields + detail.subject
        ]
        self.query_one("#browser-meta", Static).update("\n".join(meta))
        label_lines = (
            ["[b]labels[/b]"]
            + [
                f"{lb.id:>6} {escape(lb.condition_type)} {lb.status} ({lb.source}{', ' + escape(lb.severity_level) if lb.severity_level else ''})"
                for lb in labels
            ]
            if labels
            else ["[b]labels[/b]", "none"]
        )
        self.query_one("#browser-labels", Static).update("\n".join(label_lines))
        dup_lines = ["[b]duplicates[/b]"]
        dup_lines += [
            f"image {other} distance {distance} ({method})"
            for other, distance, method in detail.duplicates
        ]
        dup_lines += [f"also at {escape(source)}" for source in detail.sources[1:]]
        if len(dup_lines) == 1:
            dup_lines.append("none")
        self.query_one("#browser-duplicates", Static).update("\n".join(dup_lines))
        history_lines = (
            ["[b]history[/b]"]
            + [
                f"{h.changed_at:%Y-%m-%d %H:%M} {escape(h.changed_by)} {h.action} label {h.label_id}"
                for h in history
            ]
            if history
            else ["[b]history[/b]", "no changes yet"]
        )
        self.query_one("#browser-history", Static).update("\n".join(history_lines))

    # -- filters ----------------------------------------------------------------------------

    def on_select_changed(self, event: Select.Changed) -> None:
        name, kind = FILTERS[event.select.id or ""]
        self._set_filter(**{name: None if event.value is Select.NULL else kind(event.value)})

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        self._set_filter(duplicates=event.value)

    def _set_filter(self, **changes: Any) -> None:
        self.filter = ImageFilter(**{**self.filter.__dict__, **changes})
        self.reload()

    def action_clear_filters(self) -> None:
        with self.prevent(Select.Changed, Checkbox.Changed):
            for select in self.query(Select):
                select.clear()
            self.query_one(Checkbox).value = False
        self.filter = ImageFilter()
        self.reload()

    def action_focus_filters(self) -> None:
        self.query_one("#filter-dataset", Select).focus()

    def action_focus_table(self) -> None:
        self.query_one(DataTable).focus()

    def action_reload(self) -> None:
        self.reload()

    def action_review_image(self) -> None:
        """Open the queue on the highlighted image's labels."""
        table = self.query_one(DataTable)
        if not table.row_count:
            return
        from skinctl.labels import LabelFilter
        from skinctl.tui.screens.queue import QueueScreen

        row_key = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key
        assert row_key.value is not None  # every row is added with its image id as key
        image_id = int(row_key.value)
        self.app.queue_filter = LabelFilter(image_id=image_id)
        self.app.queue_order = "id"
        self.app.switch_mode("queue")
        queue = self.app.screen
        if isinstance(queue, QueueScreen):
            queue.action_reload()
