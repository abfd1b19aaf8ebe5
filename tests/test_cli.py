"""The frame around every command: how errors are drawn (one line, `-v` for the whole story,
no secrets) and how `--help` reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from skinctl.cli import reflow_help
from skinctl.errors import EXIT_FAILURE, EXIT_USAGE, FileAccessError

WIDE = {"COLUMNS": "250"}  # wide enough that the terminal never wraps a paragraph


def test_error_is_one_line_and_a_hint_without_traceback(offline_cli, tmp_path: Path) -> None:
    (tmp_path / "skinctl.toml").write_text("workers = [\n")
    result = offline_cli("config", "show")
    assert result.exit_code == EXIT_USAGE
    assert result.stderr.startswith("error: ")
    assert "is not valid TOML" in result.stderr
    assert "Traceback" not in result.stderr


def test_verbose_shows_the_cause_of_an_error_raised_from_none(offline_cli, tmp_path: Path) -> None:
    # config.py raises ConfigError `from None`; -v still shows the TOML parser's own error.
    (tmp_path / "skinctl.toml").write_text("workers = [\n")
    result = offline_cli("-v", "config", "show")
    assert result.exit_code == EXIT_USAGE
    assert "Traceback (most recent call last)" in result.stderr
    assert "TOMLDecodeError" in result.stderr
    assert result.stderr.rstrip().splitlines()[-2].startswith("error: ")


def test_verbose_traceback_never_shows_the_database_password(offline_cli) -> None:
    url = "postgresql://someone:s3cret-pw@127.0.0.1:1/nowhere"
    result = offline_cli("-v", "--database-url", url, "db", "status")
    assert result.exit_code == EXIT_USAGE
    assert "Traceback" in result.stderr
    assert "s3cret-pw" not in result.stderr + result.stdout


def test_os_error_escaping_a_command_is_one_error_line_naming_the_path(
    offline_cli, tmp_path: Path
) -> None:
    source = tmp_path / "set"
    (source / "oily").mkdir(parents=True)
    (source / "oily" / "a.jpg").write_bytes(b"not really a jpeg")
    # /etc/hostname is a file: nobody, root included, can make a folder under it.
    result = offline_cli(
        "fetch", "get", "skin-types", "--from", str(source), "--output-dir", "/etc/hostname/x"
    )
    assert result.exit_code == EXIT_FAILURE, result.exception
    assert result.exception is None
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "/etc/hostname" in errors[0] and "Not a directory" in errors[0]

    verbose = offline_cli(
        "-v", "fetch", "get", "skin-types", "--from", str(source), "--output-dir", "/etc/hostname/x"
    )
    assert "NotADirectoryError" in verbose.stderr


def test_os_error_without_a_path_still_says_what_failed() -> None:
    assert FileAccessError.from_os_error(OSError(28, "No space left on device")).message == (
        "A file operation failed: No space left on device."
    )
    error = FileAccessError.from_os_error(
        PermissionError(13, "Permission denied", "/srv/report.csv")
    )
    assert error.message == "Cannot use /srv/report.csv: Permission denied."


def _all_commands() -> list[list[str]]:
    from typer.main import get_command

    from skinctl.cli import app

    paths: list[list[str]] = []

    def walk(command, path: list[str]) -> None:
        paths.append(path)
        for name, child in sorted(getattr(command, "commands", {}).items()):
            walk(child, [*path, name])

    walk(get_command(app), [])
    return paths


@pytest.mark.parametrize("path", _all_commands(), ids=lambda path: " ".join(path) or "skinctl")
def test_help_shows_no_metavar_after_flags(offline_cli, path: list[str]) -> None:
    result = offline_cli(*path, "--help", env=WIDE)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "Usage:" in result.stdout
    assert "<bool>" not in result.stdout


def test_help_reflows_docstrings_into_paragraphs(offline_cli) -> None:
    # The stats docstring's first paragraph spans two source lines; the commands list and the
    # command's own help show it as one line.
    listing = offline_cli("--help", env=WIDE).stdout
    assert "quality. With --products: the product tables" in listing
    own = offline_cli("fetch", "get", "--help", env=WIDE).stdout
    assert "resumes a cut download. Commercial sets come from a file" in own


@pytest.mark.parametrize(
    ("path", "example"),
    [
        (["fetch", "get"], "skinctl fetch get skin-types"),
        (["ingest", "images"], "skinctl ingest images skin-types"),
        (
            ["ingest", "images"],
            "skinctl ingest images ./photos --dataset clinic-2026 --labels labels.csv "
            "--report rejected.csv",
        ),
        (
            ["train", "run"],
            "skinctl train run --task skin-type --dataset skin_types --verified-only --epochs 20",
        ),
        (["label", "set"], "skinctl label set 42 --condition oily"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else None,
)
def test_main_command_help_shows_an_example(offline_cli, path: list[str], example: str) -> None:
    result = offline_cli(*path, "--help", env=WIDE)
    assert result.exit_code == 0, result.stdout + result.stderr
    # Each example command is a line of its own (not reflowed into the paragraph above).
    lines = [line.strip(" │") for line in result.stdout.splitlines()]
    assert example in lines


def test_reflow_keeps_paragraphs_lists_examples_and_no_rewrap_blocks() -> None:
    text = """First line
    continues here.

    A second
    paragraph:
    - one item
    - another

    Example:

        skinctl fetch get skin-types

    \b
    kept  as
    written
    """
    assert reflow_help(text) == (
        "First line continues here.\n\n"
        "A second paragraph:\n- one item\n- another\n\n"
        "Example:\n\n"
        "    skinctl fetch get skin-types\n\n"
        "kept  as\nwritten"
    )


def test_a_reader_that_goes_away_is_not_an_error(tmp_path: Path) -> None:
    # `skinctl ... | head -1`: no traceback, no "error:" line, no "Exception ignored" noise.
    import os
    import subprocess
    import sys

    script = tmp_path / "flood.py"
    script.write_text(
        "from skinctl.cli import app\n"
        "from skinctl.commands import fetch\n"
        "@fetch.app.command('flood')\n"
        "def flood() -> None:\n"
        "    for _ in range(100_000):\n"
        "        print('x' * 100)\n"
        "app(prog_name='skinctl')\n"
    )
    reader = subprocess.run(
        f"{sys.executable} {script} fetch flood | head -1",
        shell=True,
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ,
    )
    assert reader.stdout == "x" * 100 + "\n"
    assert reader.stderr == ""
