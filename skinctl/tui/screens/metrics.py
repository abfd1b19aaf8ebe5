"""Training metrics: runs from model_training_metrics; for the highlighted run its learning
curves (textual-plotext), best epoch, per-class scores and confusion matrix when present; `m`
marks a run, and the comparison panel then shows it beside the highlighted one with the
differences coloured (green: better, red: worse).

Works on rows written by hand with only the plan's columns: per-epoch, per-class and per-group
data come from the trainer's tables, else from `hyperparameters`/`metrics` JSON (`history`,
`per_class`, `confusion_matrix`), else the panels say there is none. Accuracy and F1 show their
95% intervals and the majority-class rate beside them when the trainer recorded them.

The screen follows training as it happens: every POLL_SECONDS it re-reads the runs (a new run
appears, a status changes when a run ends) and, while the highlighted run is running, its
epochs, so the curves grow without pressing `r`. A poll is one small query; none starts while
the previous one is still out."""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape
from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static
from textual_plotext import PlotextPlot

from skinctl.train.records import RunSummary
from skinctl.tui.queries import RunDetail, interval, list_runs, run_detail
from skinctl.tui.worker import DatabaseWork

POLL_SECONDS = 2.0

# (label, attribute, higher is better)
COMPARED = (
    ("dataset size", "dataset_size", None),
    ("accuracy", "accuracy", True),
    ("majority", "majority_rate", None),
    ("precision", "precision_score", True),
    ("recall", "recall", True),
    ("F1", "f1_score", True),
    ("minutes", "training_duration_minutes", False),
)


def _with_ci(value: float | None, ci: tuple[float, float] | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def _headline(run: RunSummary) -> str:
    """Status, task, accuracy and F1 (with 95% CIs) and the majority-class rate, as recorded."""
    parts = [f"status {run.status}" if run.status else "", f"task {run.task}" if run.task else ""]
    if run.accuracy is not None:
        parts.append(f"accuracy {_with_ci(run.accuracy, interval(run.accuracy_ci95))}")
    if run.majority_rate is not None:
        parts.append(f"majority {run.majority_rate:.3f}")
    if run.f1_score is not None:
        parts.append(f"F1 {_with_ci(run.f1_score, interval(run.f1_ci95))}")
    return " · ".join(escape(p) for p in parts if p)


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


class MetricsScreen(DatabaseWork, Screen):
    CSS_PATH = Path(__file__).with_suffix(".tcss")
    BINDINGS = [
        Binding("m", "mark", "Mark for compare", id="metrics_mark"),
        Binding("u", "unmark", "Clear compare", id="metrics_unmark"),
        Binding("r", "reload", "Reload", id="metrics_reload"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.runs: dict[int, RunSummary] = {}
        self.details: dict[int, RunDetail] = {}
        self.selected: int | None = None
        self.marked: int | None = None
        self.polls = 0  # polls answered (tests wait on it)
        self._polling = False

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="metrics-body"):
            with Vertical(id="metrics-left"):
                yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
                yield Static("", id="metrics-compare")
            with VerticalScroll(id="metrics-right"):
                yield Static("", id="metrics-title")
                yield PlotextPlot(id="metrics-plot")
                yield Static("", id="metrics-classes")
                yield Static("", id="metrics-groups")
                yield Static("", id="metrics-evaluations")
                yield Static("", id="metrics-fairness")
                yield Static("", id="metrics-confusion")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for column in (
            "id",
            "model",
            "version",
            "status",
            "date",
            "images",
            "accuracy",
            "precision",
            "recall",
            "F1",
            "min",
        ):
            table.add_column(column, key=column)
        self.reload()
        table.focus()
        self.set_interval(POLL_SECONDS, self.poll)

    def reload(self) -> None:
        engine = self.app.engine
        self.details.clear()
        self.run_db(lambda: list_runs(engine), self._runs_loaded, group="runs")

    def _runs_loaded(self, runs: list[RunSummary]) -> None:
        table = self.query_one(DataTable)
        cursor = table.cursor_row
        table.clear()
        self.runs = {run.id: run for run in runs}
        for run in runs:
            table.add_row(
                str(run.id),
                run.model_name,
                run.version or "",
                run.status or "",
                f"{run.training_date:%Y-%m-%d %H:%M}" if run.training_date else "",
                _fmt(run.dataset_size),
                _fmt(run.accuracy),
                _fmt(run.precision_score),
                _fmt(run.recall),
                _fmt(run.f1_score),
                _fmt(run.training_duration_minutes),
                key=str(run.id),
            )
        if self.selected is not None and self.selected in self.runs:
            table.move_cursor(row=table.get_row_index(str(self.selected)))
        elif runs:
            table.move_cursor(row=min(cursor, len(runs) - 1))
        if not runs:
            self.query_one("#metrics-title", Static).update(
                "No training runs yet: `skinctl train` records them here."
            )
            self._plot(None)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key is None or event.row_key.value is None:
            return
        run_id = int(event.row_key.value)
        self.selected = run_id
        if run_id in self.details:
            self._show(self.details[run_id])
            return
        engine = self.app.engine
        self.run_db(lambda: run_detail(engine, run_id), self._detail_loaded, group="detail")

    def _detail_loaded(self, detail: RunDetail | None) -> None:
        if detail is None:
            return
        self.details[detail.run.id] = detail
        if detail.run.id == self.selected:
            self._show(detail)

    # -- following a running training ------------------------------------------------------

    def poll(self) -> None:
        """Re-read the runs, and the highlighted run's detail while it runs or just changed."""
        if self._polling:
            return
        self._polling = True
        engine, selected, before = self.app.engine, self.selected, dict(self.runs)

        def job() -> tuple[list[RunSummary], RunDetail | None]:
            runs = list_runs(engine)
            now = {run.id: run for run in runs}
            if selected is None or selected not in now:
                return runs, None
            follow = now[selected].status == "running" or now[selected] != before.get(selected)
            return runs, run_detail(engine, selected) if follow else None

        def done(result: tuple[list[RunSummary], RunDetail | None]) -> None:
            self._polling = False
            self.polls += 1
            runs, detail = result
            if runs != list(self.runs.values()):
                self._runs_loaded(runs)
            if detail is not None and detail != self.details.get(detail.run.id):
                self._detail_loaded(detail)

        def failed(_error: BaseException) -> None:
            self._polling = False

        self.run_db(
            job, done, group="poll", on_error=failed
        )  # a lost connection: retried, backing off

    # -- drawing ----------------------------------------------------------------------------

    def _show(self, detail: RunDetail) -> None:
        run = detail.run
        best = f" · best epoch {detail.best_epoch}" if detail.best_epoch is not None else ""
        self.query_one("#metrics-title", Static).update(
            f"[b]{escape(run.model_name)} {escape(run.version or '')}[/b] · run {run.id}{best}\n{_headline(run)}"
            + (f"\n[yellow]{escape(detail.warning)}[/yellow]" if detail.warning else "")
            + (f"\n[dim]{escape(detail.notes)}[/dim]" if detail.notes else "")
        )
        self._plot(detail)
        self.query_one("#metrics-classes", Static).update(self._class_table(detail))
        groups = self.query_one("#metrics-groups", Static)
        groups.display = bool(detail.run.per_group)
        groups.update(self._group_table(detail) if detail.run.per_group else "")
        evaluations = self.query_one("#metrics-evaluations", Static)
        evaluations.display = bool(detail.run.evaluations)
        evaluations.update(self._evaluation_table(detail) if detail.run.evaluations else "")
        fairness = self.query_one("#metrics-fairness", Static)
        fairness.display = bool(detail.fairness and detail.fairness.gaps)
        fairness.update(self._fairness_table(detail) if fairness.display else "")
        self.query_one("#metrics-confusion", Static).update(self._confusion_table(detail))
        self._show_compare()

    def _plot(self, detail: RunDetail | None) -> None:
        plot = self.query_one(PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        if detail is None or not detail.epochs:
            plt.title("no per-epoch data for this run")
            plot.refresh()
            return
        epochs = detail.epochs
        keys = [
            k
            for k in (
                "train_loss",
                "loss",
                "val_loss",
                "train_accuracy",
                "accuracy",
                "val_accuracy",
            )
            if any(k in e for e in epochs)
        ]
        for key in keys:
            points = [(e["epoch"], e[key]) for e in epochs if key in e]
            plt.plot([p[0] for p in points], [p[1] for p in points], label=key, marker="braille")
        if detail.best_epoch is not None:
            plt.vline(detail.best_epoch, "red")
        plt.title("learning curves")
        plt.xlabel("epoch")
        plot.refresh()

    @staticmethod
    def _class_table(detail: RunDetail) -> Table | str:
        if not detail.per_class:
            return "[dim]no per-class scores for this run[/dim]"
        table = Table(title="per class", title_justify="left", expand=False)
        for column in ("class", "precision", "recall", "F1", "support"):
            table.add_column(column, justify="left" if column == "class" else "right")
        for row in detail.per_class:
            table.add_row(
                escape(str(row["class"])),
                _fmt(row.get("precision")),
                _fmt(row.get("recall")),
                _fmt(row.get("f1")),
                _fmt(row.get("support")),
            )
        return table

    @staticmethod
    def _group_table(detail: RunDetail) -> Table:
        table = Table(title="per group (test split)", title_justify="left", expand=False)
        for column in ("group", "n", "accuracy [95% CI]", "F1", "majority"):
            table.add_column(column, justify="left" if column == "group" else "right")
        for row in detail.run.per_group:
            low, high = row.accuracy_ci95
            ci = (low, high) if low is not None and high is not None else None
            table.add_row(
                escape(f"{row.group_by} {row.group_value}"),
                _fmt(row.support),
                _with_ci(row.accuracy, ci),
                _fmt(row.f1_macro),
                _fmt(row.majority_rate),
            )
        return table

    @staticmethod
    def _evaluation_table(detail: RunDetail) -> Table:
        """The run's own test beside its evaluations on data it never trained on."""
        run = detail.run
        table = Table(title="own test and evaluations", title_justify="left", expand=False)
        for column in (
            "data",
            "n",
            "copies left out",
            "accuracy [95% CI]",
            "F1 [95% CI]",
            "majority",
        ):
            table.add_column(column, justify="left" if column == "data" else "right")
        table.add_row(
            "own test split",
            "-",
            "-",
            _with_ci(run.accuracy, interval(run.accuracy_ci95)),
            _with_ci(run.f1_score, interval(run.f1_ci95)),
            _fmt(run.majority_rate),
        )
        for e in run.evaluations:
            table.add_row(
                escape(f"evaluation {e.id}: {', '.join(e.datasets)}"),
                _fmt(e.images),
                f"{e.exact_copies_left_out} exact, {e.near_copies_left_out} near",
                _with_ci(e.accuracy, interval(e.accuracy_ci95)),
                _with_ci(e.f1_macro, interval(e.f1_ci95)),
                _fmt(e.majority_rate),
            )
        return table

    @staticmethod
    def _fairness_table(detail: RunDetail) -> Table:
        """Worst group vs the rest per grouping; FLAG when the gap's 95% interval excludes 0."""
        table = Table(
            title="fairness: worst group vs rest (accuracy gap, 95% CI)",
            title_justify="left",
            expand=False,
        )
        for column in ("grouping", "worst", "n", "acc", "rest", "gap [95% CI]", ""):
            table.add_column(column, justify="left" if column in ("grouping", "worst") else "right")
        assert detail.fairness is not None
        for gap in detail.fairness.gaps:
            table.add_row(
                escape(gap.group_by),
                escape(gap.worst_group),
                str(gap.worst_support),
                _fmt(gap.worst_accuracy),
                _fmt(gap.rest_accuracy),
                f"{gap.gap:+.3f} [{gap.gap_low:+.3f}, {gap.gap_high:+.3f}]",
                "[red]FLAG[/red]" if gap.flagged else "",
            )
        return table

    @staticmethod
    def _confusion_table(detail: RunDetail) -> Table | str:
        confusion = detail.confusion
        if not confusion:
            return "[dim]no confusion matrix for this run[/dim]"
        labels, matrix = confusion["labels"], confusion["matrix"]
        table = Table(
            title="confusion (rows: true, columns: predicted)", title_justify="left", expand=False
        )
        table.add_column("")
        for label in labels:
            table.add_column(escape(str(label))[:10], justify="right")
        for i, row in enumerate(matrix):
            cells = [
                f"[b green]{v}[/]" if i == j else (str(v) if v else "[dim]0[/dim]")
                for j, v in enumerate(row)
            ]
            table.add_row(escape(str(labels[i] if i < len(labels) else i)), *cells)
        return table

    def _show_compare(self) -> None:
        panel = self.query_one("#metrics-compare", Static)
        if (
            self.marked is None
            or self.selected is None
            or self.marked not in self.runs
            or self.selected not in self.runs
        ):
            panel.update("[dim]m marks a run; the highlighted one is then compared with it[/dim]")
            return
        a, b = self.runs[self.marked], self.runs[self.selected]
        table = Table(title=f"run {a.id} (marked) vs run {b.id}", title_justify="left", expand=True)
        for column in (
            "",
            f"{a.model_name} {a.version or ''}",
            f"{b.model_name} {b.version or ''}",
            "difference",
        ):
            table.add_column(escape(column), justify="right")
        da, db = self.details.get(a.id), self.details.get(b.id)
        rows = [
            (label, getattr(a, attr), getattr(b, attr), better) for label, attr, better in COMPARED
        ]
        rows.append(
            ("best epoch", da.best_epoch if da else None, db.best_epoch if db else None, None)
        )
        for label, va, vb, better in rows:
            diff = ""
            if isinstance(va, int | float) and isinstance(vb, int | float) and va != vb:
                delta = vb - va
                text = f"{delta:+.3f}" if isinstance(delta, float) else f"{delta:+,}"
                colour = "yellow" if better is None else "green" if (delta > 0) == better else "red"
                diff = f"[b {colour}]{text}[/]"
            table.add_row(label, _fmt(va), _fmt(vb), diff)
        panel.update(table)

    # -- actions ----------------------------------------------------------------------------

    def action_mark(self) -> None:
        if self.selected is None:
            return
        self.marked = self.selected
        if self.marked not in self.details:
            engine, run_id = self.app.engine, self.marked
            self.run_db(
                lambda: run_detail(engine, run_id), self._detail_loaded, group="detail-marked"
            )
        self._show_compare()
        self.notify(f"run {self.marked} marked: move to another run to compare", timeout=3)

    def action_unmark(self) -> None:
        self.marked = None
        self._show_compare()

    def action_reload(self) -> None:
        self.reload()
