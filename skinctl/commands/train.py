"""`skinctl train ...` and `skinctl predict`: thin wrappers over skinctl.train (which imports
TensorFlow only when a command trains or predicts)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from skinctl.commands.common import state
from skinctl.engines import EngineKind
from skinctl.train.choices import Architecture, Augment, BalanceBy, Schedule, SplitMethod, Task

if TYPE_CHECKING:
    from skinctl.train.evaluation import EvaluationDetail
    from skinctl.train.fairness import FairnessSummary
    from skinctl.train.records import GroupRow, RunDetail

app = typer.Typer(
    help="Train Keras classifiers from the database, and list, compare, score and delete runs.",
    no_args_is_help=True,
)

JSON_OPTION = typer.Option(False, "--json", help="Print JSON on stdout.")


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, float) for v in value):
        return f"{value[0]:.{digits}f}-{value[1]:.{digits}f}"
    return str(value)


def _headline(run: RunDetail) -> str:
    test = run.test_metrics
    if run.accuracy is None:
        return f"run {run.id} {run.status}: no test metrics"
    return (
        f"run {run.id} {run.status}: test accuracy {_fmt(run.accuracy)} "
        f"(95% CI {_fmt(run.accuracy_ci95)}) vs majority-class rate {_fmt(run.majority_rate)} "
        f"(always {test.get('majority_class')!r}); macro F1 {_fmt(run.f1_score)} "
        f"(95% CI {_fmt(run.f1_ci95)}) vs {_fmt(test.get('majority_f1_macro'))} for the majority answer"
    )


@app.command("run")
def run(
    ctx: typer.Context,
    task: Task = typer.Option(..., "--task", help="What the model learns."),
    dataset: list[str] = typer.Option(
        [], "--dataset", help="Only images of this dataset (repeatable)."
    ),
    verified_only: bool = typer.Option(
        False, "--verified-only", help="Only labels a person verified."
    ),
    classes: str | None = typer.Option(
        None, "--classes", help="Comma-separated classes to learn (default: all)."
    ),
    min_images: int = typer.Option(
        0,
        "--min-images",
        help="Leave out classes with fewer images than this (after joining datasets' names "
        "through `skinctl classes`), and say which.",
    ),
    multi_label: bool = typer.Option(
        False,
        "--multi-label",
        help="Train images with several labels (sigmoid outputs, per-class thresholds on validation); "
        "otherwise they are left out and counted.",
    ),
    balance_by: BalanceBy | None = typer.Option(
        None, "--balance-by", help="Reweight across subject groups."
    ),
    model: Architecture = typer.Option(
        Architecture.small_cnn, "--model", help="The network to train."
    ),
    image_size: int = typer.Option(128, "--image-size", help="Square input size in pixels."),
    epochs: int = typer.Option(30, "--epochs", help="Maximum epochs (early stopping on val loss)."),
    batch_size: int = typer.Option(32, "--batch-size"),
    learning_rate: float = typer.Option(1e-3, "--learning-rate"),
    seed: int = typer.Option(42, "--seed", help="Seeds the split, the weights and the shuffling."),
    val_fraction: float = typer.Option(0.15, "--val-fraction"),
    test_fraction: float = typer.Option(0.15, "--test-fraction"),
    split: SplitMethod = typer.Option(
        SplitMethod.group,
        "--split",
        help="group: group-aware split (duplicates, group keys, subjects never straddle splits); "
        "dataset: the source's own train/valid/test folders (may leak; for comparison).",
    ),
    patience: int = typer.Option(5, "--patience", help="Early-stopping patience in epochs."),
    name: str | None = typer.Option(None, "--name", help="Model name (default: <task>-<model>)."),
    version: str | None = typer.Option(
        None, "--version", help="Version label (default: next number)."
    ),
    weights: str | None = typer.Option(
        None,
        "--weights",
        help="Initial weights: a .h5/.keras file, 'imagenet' (required), or 'none' (from "
        "scratch). Unset: ImageNet for mobilenet-v3-small and efficientnet-b0 when they can be "
        "fetched (cached under the home), else from scratch with a notice.",
    ),
    notes: str | None = typer.Option(None, "--notes", help="Free text kept with the run."),
    augment: Augment = typer.Option(Augment.basic, "--augment", help="Training augmentation."),
    label_smoothing: float = typer.Option(0.0, "--label-smoothing", help="0 = off; e.g. 0.1."),
    mixup: float = typer.Option(0.0, "--mixup", help="Mixup Beta alpha; 0 = off; e.g. 0.2."),
    schedule: Schedule = typer.Option(
        Schedule.constant, "--schedule", help="Learning-rate schedule."
    ),
    tta: bool = typer.Option(False, "--tta", help="Test-time augmentation (mirror average)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Train a classifier on a query over the database and record the run.

    Example: a skin-type classifier on verified labels

        skinctl train run --task skin-type --dataset skin_types --verified-only --epochs 20
    """
    from skinctl.console import info, print_json, progress_bar, progress_enabled, stdout, warn
    from skinctl.db.models import RunStatus
    from skinctl.errors import EXIT_FAILURE, EXIT_INTERRUPTED
    from skinctl.train.options import TrainOptions
    from skinctl.train.runner import run_training

    app_state = state(ctx)
    if task == Task.sentiment:  # review sentiment: trained and recorded by skinctl.reviews
        _run_sentiment(ctx, as_json)
        return
    options = TrainOptions(
        task=task,
        datasets=list(dataset),
        verified_only=verified_only,
        classes=classes.split(",") if classes else None,
        multi_label=multi_label,
        min_images=min_images,
        balance_by=balance_by,
        model=model,
        image_size=image_size,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        seed=seed,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        split=split,
        patience=patience,
        name=name,
        version=version,
        weights=weights,
        notes=notes,
        augment=augment,
        label_smoothing=label_smoothing,
        mixup=mixup,
        schedule=schedule,
        tta=tta,
    )
    engine = app_state.engine()
    with progress_bar(progress_enabled()) as report:
        result = run_training(
            engine,
            app_state.storage(),
            options,
            home=app_state.settings.home,
            user=app_state.settings.user,
            report=report,
            announce=warn,
        )
    if result is None:  # a worker of a multi-worker run other than the chief
        info("trained as a worker of a multi-worker run; the chief (worker 0) records the run")
        return
    for reason, count in result.left_out.items():
        warn(f"{count} images left out: {reason}.")
    small = (result.hyperparameters or {}).get("small_classes") or {}
    if small:
        warn(
            f"classes left out (fewer than {min_images} images): "
            + ", ".join(f"{name} ({n})" for name, n in small.items())
        )
    if result.warning:
        warn(result.warning)
    if as_json:
        print_json(result)
    else:
        stdout.print(_headline(result), highlight=False)
        _print_per_class(result)
        if result.model_uri:
            stdout.print(f"model saved to {result.model_uri}", highlight=False)
    if result.status == RunStatus.interrupted:
        raise typer.Exit(EXIT_INTERRUPTED)
    if result.status == RunStatus.failed:
        raise typer.Exit(EXIT_FAILURE)


# `train run` options a sentiment run takes (the others are image options).
SENTIMENT_OPTIONS = (
    "epochs",
    "batch_size",
    "learning_rate",
    "seed",
    "val_fraction",
    "test_fraction",
    "patience",
    "name",
    "version",
    "notes",
)


def _run_sentiment(ctx: typer.Context, as_json: bool) -> None:
    """`train run --task sentiment`: the options given on the command line override the
    sentiment model's own defaults."""
    from click.core import ParameterSource

    from skinctl.console import print_json, progress_bar, progress_enabled, stdout, warn
    from skinctl.reviews.train import SentimentOptions, train_sentiment
    from skinctl.train.records import run_detail

    given = {
        name: ctx.params[name]
        for name in SENTIMENT_OPTIONS
        if ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, None)
    }
    app_state = state(ctx)
    engine = app_state.engine()
    with progress_bar(progress_enabled()) as report:
        run_id = train_sentiment(
            engine,
            app_state.storage(),
            SentimentOptions(**given),
            user=app_state.settings.user,
            report=report,
        )
    result = run_detail(engine, run_id)
    if result.warning:
        warn(result.warning)
    if as_json:
        print_json(result)
        return
    stdout.print(_headline(result), highlight=False)
    _print_per_class(result)
    metrics = result.metrics or {}
    test, baselines = result.test_metrics, metrics.get("baselines") or {}
    vader, majority = baselines.get("vader") or {}, baselines.get("majority") or {}

    def ci(values: list[float] | None) -> str:
        return f"{values[0]:.3f}-{values[1]:.3f}" if values else "-"

    stdout.print(
        f"macro-F1: model {test.get('f1_macro', 0):.3f} ({ci(test.get('f1_macro_ci95'))}), "
        f"VADER {vader.get('f1_macro', 0):.3f} ({ci(vader.get('f1_macro_ci95'))}), "
        f"majority answer {majority.get('f1_macro', 0):.3f}; accuracy: model {test.get('accuracy', 0):.3f} "
        f"({ci(test.get('accuracy_ci95'))}), VADER {vader.get('accuracy', 0):.3f}, majority rate "
        f"{test.get('majority_rate', 0):.3f}",
        highlight=False,
    )
    if result.model_uri:
        stdout.print(
            f"model saved to {result.model_uri}; score reviews with "
            f"`skinctl reviews score --run {run_id}`",
            highlight=False,
        )


def _print_per_class(
    run: RunDetail | EvaluationDetail, title: str = "per class (test split)"
) -> None:
    from skinctl.console import stdout, table

    if run.per_class:
        stdout.print(
            table(
                title,
                ["class", "precision", "recall", "f1", "support"],
                [
                    [c.class_name, _fmt(c.precision), _fmt(c.recall), _fmt(c.f1), c.support]
                    for c in run.per_class
                ],
            )
        )


@app.command("list")
def list_(
    ctx: typer.Context,
    task: Task | None = typer.Option(None, "--task", help="Only runs of this task."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Recorded training runs, newest first."""
    from skinctl.console import print_json, stdout, table
    from skinctl.train.records import list_runs

    runs = list_runs(state(ctx).engine(), task=task)
    if as_json:
        print_json(runs)
        return
    stdout.print(
        table(
            "training runs",
            [
                "id",
                "name",
                "task",
                "status",
                "images",
                "accuracy [95% CI]",
                "majority",
                "F1",
                "best",
                "date",
            ],
            [
                [
                    r.id,
                    f"{r.model_name} v{r.version}",
                    r.task,
                    r.status,
                    r.dataset_size,
                    f"{_fmt(r.accuracy)} [{_fmt(r.accuracy_ci95, 2)}]"
                    if r.accuracy is not None
                    else "-",
                    _fmt(r.majority_rate),
                    _fmt(r.f1_score),
                    r.best_epoch,
                    r.training_date and r.training_date.strftime("%m-%d %H:%M"),
                ]
                for r in runs
            ],
        )
    )


@app.command("show")
def show(
    ctx: typer.Context,
    run_ref: str = typer.Argument(..., metavar="RUN", help="Run id or 'latest'."),
    fairness: bool = typer.Option(
        False,
        "--fairness",
        help="Only the per-group test figures and the fairness summary (worst group vs the rest).",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Everything recorded about one run: metrics with intervals, epochs, classes, groups."""
    from skinctl.console import print_json, stdout, table
    from skinctl.train.records import run_detail

    detail = run_detail(state(ctx).engine(), run_ref)
    if fairness:
        _show_fairness(detail, as_json)
        return
    if as_json:
        print_json(detail)
        return
    stdout.print(
        f"[bold]{detail.model_name} v{detail.version}[/] ({detail.architecture}, "
        f"task {detail.task}, seed {detail.seed}, splits {detail.split_sizes})"
    )
    stdout.print(_headline(detail), highlight=False)
    if detail.warning:
        stdout.print(f"[yellow]{detail.warning}[/]", highlight=False)
    if detail.model_uri:
        stdout.print(f"model: {detail.model_uri}", highlight=False)
    if detail.notes:
        stdout.print(f"notes: {detail.notes}", highlight=False)
    best = detail.best_epoch
    stdout.print(
        table(
            "epochs",
            ["epoch", "train loss", "val loss", "train acc", "val acc", "seconds"],
            [
                [
                    f"{e.epoch}{' *' if e.epoch == best else ''}",
                    _fmt(e.train_loss, 4),
                    _fmt(e.val_loss, 4),
                    _fmt(e.train_accuracy),
                    _fmt(e.val_accuracy),
                    _fmt(e.seconds, 1),
                ]
                for e in detail.epochs
            ],
        )
    )
    _print_per_class(detail)
    matrix = detail.confusion_matrix
    if matrix:
        stdout.print(
            table(
                "confusion matrix (rows: true, columns: predicted)",
                ["", *matrix["classes"]],
                [
                    [name, *row]
                    for name, row in zip(matrix["classes"], matrix["matrix"], strict=True)
                ],
            )
        )
    _print_per_group(detail.per_group, "per subject group (test split)")
    if detail.evaluations:
        stdout.print(
            table(
                "own test and evaluations on other data",
                [
                    "",
                    "data",
                    "images",
                    "copies left out",
                    "accuracy",
                    "95% CI",
                    "F1",
                    "95% CI",
                    "majority",
                ],
                [
                    [
                        "own test",
                        "test split",
                        detail.split_sizes.get("test"),
                        "-",
                        _fmt(detail.accuracy),
                        _fmt(detail.accuracy_ci95),
                        _fmt(detail.f1_score),
                        _fmt(detail.f1_ci95),
                        _fmt(detail.majority_rate),
                    ],
                    *(
                        [
                            f"evaluation {e.id}",
                            ", ".join(e.datasets),
                            e.images,
                            f"{e.exact_copies_left_out} exact, {e.near_copies_left_out} near",
                            _fmt(e.accuracy),
                            _fmt(e.accuracy_ci95),
                            _fmt(e.f1_macro),
                            _fmt(e.f1_ci95),
                            _fmt(e.majority_rate),
                        ]
                        for e in detail.evaluations
                    ),
                ],
            )
        )


def _print_per_group(groups: list[GroupRow], title: str) -> None:
    from skinctl.console import stdout, table

    if groups:
        stdout.print(
            table(
                title,
                ["group", "value", "support", "accuracy", "95% CI", "F1", "majority"],
                [
                    [
                        g.group_by,
                        g.group_value,
                        g.support,
                        _fmt(g.accuracy),
                        _fmt(g.accuracy_ci95),
                        _fmt(g.f1_macro),
                        _fmt(g.majority_rate),
                    ]
                    for g in groups
                ],
            )
        )


def _show_fairness(detail: RunDetail, as_json: bool) -> None:
    from skinctl.console import print_json, stdout
    from skinctl.train.fairness import RunFairness, fairness_summary

    summary = fairness_summary(detail.per_group)
    if as_json:
        print_json(RunFairness(detail.id, detail.model_name, detail.version, summary))
        return
    stdout.print(f"[bold]{detail.model_name} v{detail.version}[/] (run {detail.id})")
    if not detail.per_group:
        stdout.print(
            "No per-group figures: the test split has no group with data (tone: run "
            "`skinctl images tone`; others: import subject metadata).",
            highlight=False,
        )
        return
    _print_per_group(detail.per_group, "per subject group (test split)")
    _print_fairness(summary)


def _print_fairness(summary: FairnessSummary) -> None:
    """The worst group against the rest per grouping, with the gap's 95% interval."""
    from skinctl.console import stdout, table

    if not summary.gaps:
        stdout.print("No grouping has two groups of 5 or more test images to compare.")
        return
    stdout.print(
        table(
            "fairness: worst group vs the rest (accuracy gap, 95% interval)",
            ["grouping", "worst (n)", "accuracy", "rest (n)", "gap [95% CI]", ""],
            [
                [
                    g.group_by,
                    f"{g.worst_group} ({g.worst_support})",
                    _fmt(g.worst_accuracy),
                    f"{_fmt(g.rest_accuracy)} ({g.rest_support})",
                    f"{g.gap:+.3f} [{g.gap_low:+.3f}, {g.gap_high:+.3f}]",
                    "[red]FLAG[/]" if g.flagged else "",
                ]
                for g in summary.gaps
            ],
        )
    )
    stdout.print(
        "FLAG: the gap's 95% interval excludes zero."
        if summary.flagged
        else "No gap is flagged: every interval includes zero.",
        highlight=False,
    )
    stdout.print(
        "Tone is estimated from the pixels (ITA), not a person's Fitzpatrick type.",
        highlight=False,
    )


@app.command("compare")
def compare(
    ctx: typer.Context,
    run_a: str = typer.Argument(..., metavar="RUN"),
    run_b: str = typer.Argument(..., metavar="RUN"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Two runs side by side; differences highlighted."""
    from skinctl.console import print_json, stdout
    from skinctl.train.records import compare_runs

    result = compare_runs(state(ctx).engine(), run_a, run_b)
    if as_json:
        print_json(result)
        return
    from rich.table import Table

    grid = Table(
        title=f"run {result.a} vs run {result.b}", title_justify="left", header_style="bold"
    )
    for column in ("field", f"run {result.a}", f"run {result.b}"):
        grid.add_column(column)
    for row in result.rows:
        style = "bold yellow" if row.differs else "dim"
        grid.add_row(row.field, _fmt(row.a), _fmt(row.b), style=style)
    stdout.print(grid)
    stdout.print(
        f"test-split overlap (Jaccard): {result.test_split_overlap:.2f}"
        + (
            ""
            if result.test_split_overlap == 1
            else " (different test images: compare the intervals, not the point values)"
        ),
        highlight=False,
    )


@app.command("delete")
def delete(
    ctx: typer.Context,
    run_ref: str = typer.Argument(..., metavar="RUN"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Delete a run, its recorded metrics, splits, scores and saved model."""
    from skinctl.console import info, print_json
    from skinctl.train.records import delete_run

    app_state = state(ctx)
    result = delete_run(app_state.engine(), run_ref, app_state.storage())
    if as_json:
        print_json(result)
    else:
        info(
            f"deleted run {result.id}"
            + (f" and its model {result.model_uri}" if result.model_deleted else "")
        )


@app.command("evaluate")
def evaluate(
    ctx: typer.Context,
    run_ref: str = typer.Argument(..., metavar="RUN", help="Run id or 'latest'."),
    dataset: list[str] = typer.Option(
        ..., "--dataset", help="The data to evaluate on (repeatable)."
    ),
    link: bool = typer.Option(
        True,
        "--link/--no-link",
        help="Link near duplicates of images not linked yet first, so near copies of the "
        "run's training images are found and left out.",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """The run's model on data it never trained on: exact and near copies of its training
    images are left out and counted; recorded as an evaluation of the run."""
    from skinctl.console import print_json, progress_bar, progress_enabled, stdout, warn
    from skinctl.train.evaluation import evaluate_run

    app_state = state(ctx)
    engine, storage = app_state.engine(), app_state.storage()
    with progress_bar(progress_enabled()) as report:
        if link:
            from skinctl.dedup import link as link_images

            link_images(engine, storage, full=False, report=report)
        result = evaluate_run(
            engine,
            storage,
            run_ref,
            dataset,
            home=app_state.settings.home,
            user=app_state.settings.user,
            report=report,
        )
    for reason, count in result.left_out.items():
        warn(f"{count} images left out: {reason}.")
    if result.warning:
        warn(result.warning)
    if as_json:
        print_json(result)
        return
    stdout.print(
        f"evaluation {result.id} of run {result.run_id} on {', '.join(result.datasets)}: "
        f"{result.images} images (left out {result.exact_copies_left_out} exact and "
        f"{result.near_copies_left_out} near copies of training images); accuracy "
        f"{_fmt(result.accuracy)} (95% CI {_fmt(result.accuracy_ci95)}) vs majority-class rate "
        f"{_fmt(result.majority_rate)} (always {result.majority_class!r}); macro F1 "
        f"{_fmt(result.f1_macro)} (95% CI {_fmt(result.f1_ci95)})",
        highlight=False,
    )
    _print_per_class(result, "per class (evaluation)")
    _print_per_group(result.per_group, "per group (evaluation)")
    if result.per_group:
        _print_fairness(result.fairness)


@app.command("score")
def score(
    ctx: typer.Context,
    run_ref: str = typer.Option("latest", "--run", help="Run id or 'latest'."),
    folds: int | None = typer.Option(
        None,
        "--folds",
        help="Score every image by K-fold cross-validation (K models with the run's settings); "
        "default: the run's own model on its held-out val/test images.",
    ),
    engine_kind: EngineKind = typer.Option(
        EngineKind.local,
        "--engine",
        help="Where the held-out images are scored: here, or as Ray Data map_batches on Ray "
        "(skinctl[ray]; --folds trains here either way).",
    ),
    ray_address: str | None = typer.Option(
        None, "--address", help="Ray cluster for --engine ray (ray://HEAD:10001); default: local."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Store out-of-sample class probabilities and a 'likely mislabeled' score per image."""
    from skinctl.console import print_json, progress_bar, progress_enabled, stdout, table
    from skinctl.train.predict import score_run

    app_state = state(ctx)
    with progress_bar(progress_enabled()) as report:
        result = score_run(
            app_state.engine(),
            app_state.storage(),
            run_ref,
            home=app_state.settings.home,
            folds=folds,
            report=report,
            engine_kind=engine_kind,
            ray_address=ray_address,
        )
    if as_json:
        print_json(result)
        return
    stdout.print(
        f"run {result.run}: scored {result.scored} images ({result.origin}); "
        f"model agrees with the given label on {result.agreement_with_given_labels:.1%}",
        highlight=False,
    )
    stdout.print(
        table(
            "most likely mislabeled",
            ["image", "given", "predicted", "self-confidence", "score"],
            [
                [
                    r.image_id,
                    ",".join(r.given_labels),
                    r.predicted_label,
                    _fmt(r.self_confidence),
                    _fmt(r.mislabel_score),
                ]
                for r in result.likely_mislabeled
            ],
        )
    )


def predict(
    ctx: typer.Context,
    images: list[str] = typer.Argument(..., metavar="IMAGE...", help="Image files or image ids."),
    run_ref: str = typer.Option("latest", "--run", help="Run id or 'latest'."),
    top: int = typer.Option(3, "--top", help="How many classes to show per image."),
    severity_run: str | None = typer.Option(
        None,
        "--severity-run",
        help="The severity run that grades a condition (default: the promoted severity model, "
        "else the newest finished severity run whose condition the run answers).",
    ),
    severity: bool = typer.Option(
        True, "--severity/--no-severity", help="Add a severity level where a model exists."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Per-class confidence for images (files or database ids) from a trained run's model,
    with a severity level and its confidence where a severity model grades a condition."""
    from skinctl.console import print_json, stdout, table, warn
    from skinctl.errors import EXIT_REJECTED
    from skinctl.train.predict import predict_inputs

    app_state = state(ctx)
    engine = app_state.engine()
    promoted = None
    if severity and severity_run is None:
        from skinctl.registry.service import live_promotions
        from skinctl.registry.tasks import Task as ServedTask

        promoted = next(
            (p.run_id for p in live_promotions(engine) if p.task == ServedTask.severity), None
        )
    result = predict_inputs(
        engine,
        app_state.storage(),
        images,
        run=run_ref,
        top=top,
        home=app_state.settings.home,
        severity_run=severity_run,
        promoted_severity_run=promoted,
        with_severity=severity,
    )
    if as_json:
        print_json(result)
    else:
        stdout.print(
            table(
                f"run {result.run} ({result.task})",
                ["image", "prediction", "top classes", "severity"],
                [
                    [
                        r.input,
                        f"severity {r.severity}" if r.severity is not None else r.prediction,
                        ", ".join(f"{t.class_} {t.confidence:.2f}" for t in r.top),
                        "; ".join(
                            f"{g.condition} {g.condition_confidence:.2f}: level {g.level} "
                            f"({g.confidence:.2f}, run {g.run})"
                            for g in r.severities or []
                        ),
                    ]
                    for r in result.results
                ],
            )
        )
    for item in result.rejected:
        warn(f"{item.input}: {item.reason}")
    if result.rejected:
        raise typer.Exit(EXIT_REJECTED)
