"""Every command group is there, and `skinctl --help` / `skinctl GROUP --help` pay for none of
TensorFlow, Textual, kagglehub, google-cloud-storage, SQLAlchemy, Pillow or numpy."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = (
    "tensorflow",
    "keras",
    "textual",
    "kagglehub",
    "google.cloud",
    "cv2",
    "sqlalchemy",
    "PIL",
    "numpy",
)

# Every command group and top-level command of skinctl. A group added to the CLI is added here
# (test_every_command_is_expected fails until it is); one that goes missing fails its test.
GROUPS = (
    "config",
    "db",
    "fetch",
    "storage",
    "ingest",
    "ingredients",
    "products",
    "label",
    "classes",
    "dedup",
    "images",
    "train",
    "reviews",
    "model",
    "api-key",
)
COMMANDS = ("tui", "demo", "stats", "predict", "serve")

PROBE = """
import json, sys
from skinctl.cli import app
try:
    app(args=sys.argv[1:], prog_name="skinctl")
except SystemExit as exit:
    code = exit.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def _root_commands() -> dict:
    from typer.main import get_command

    from skinctl.cli import app

    return get_command(app).commands  # type: ignore[attr-defined]


def test_every_command_is_expected() -> None:
    assert sorted(_root_commands()) == sorted(GROUPS + COMMANDS)


@pytest.mark.parametrize("args", [["--help"]] + [[group, "--help"] for group in GROUPS])
def test_help_imports_nothing_heavy(args: list[str]) -> None:
    if args[0] != "--help":
        assert args[0] in _root_commands(), f"the {args[0]} command group is missing"
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=60
    )
    report = json.loads(result.stderr.strip().splitlines()[-1])
    assert report["code"] in (0, None), result.stdout
    heavy_loaded = [
        m for m in report["modules"] if any(m == h or m.startswith(h + ".") for h in HEAVY)
    ]
    assert heavy_loaded == [], f"{' '.join(args)} imported {heavy_loaded[:10]}"
    assert "Usage" in result.stdout
