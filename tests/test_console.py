"""The one progress renderer: counts for item stages, sizes for byte stages."""

from __future__ import annotations

import io

from rich.console import Console

from skinctl import console


def test_progress_bar_shows_sizes_for_byte_stages_and_counts_otherwise(monkeypatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(console, "stderr", Console(file=out, force_terminal=True, width=120))
    with console.progress_bar(True, byte_stages={"download"}) as report:
        report("download", 1_500_000, 3_000_000)
        report("check", 1234, 5000)
    drawn = out.getvalue()
    assert "1.5/3.0 MB" in drawn
    assert "1,234/5,000" in drawn


def test_progress_bar_disabled_is_the_no_op_reporter() -> None:
    with console.progress_bar(False) as report:
        assert report is console.no_progress
