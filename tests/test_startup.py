"""`skinctl --help` must not pay for TensorFlow, Textual, kagglehub or google-cloud-storage."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("tensorflow", "keras", "textual", "kagglehub", "google.cloud", "cv2", "sqlalchemy", "PIL", "numpy")

PROBE = """
import json, sys
from skinctl.cli import app
try:
    app(args=sys.argv[1:], prog_name="skinctl")
except SystemExit as exit:
    code = exit.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


@pytest.mark.parametrize(
    "args",
    [["--help"], ["db", "--help"], ["config", "--help"]]
    + [[group, "--help"] for group in ("ingest", "label", "train", "fetch", "storage", "dedup", "products")],
)
def test_help_imports_nothing_heavy(args: list[str]) -> None:
    from typer.main import get_command

    from skinctl.cli import app

    group = get_command(app)
    if args[0] != "--help" and args[0] not in group.commands:  # type: ignore[attr-defined]
        pytest.skip(f"no {args[0]} group yet")
    result = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=60)
    report = json.loads(result.stderr.strip().splitlines()[-1])
    assert report["code"] in (0, None), result.stdout
    loaded = [m for m in report["modules"] if m.split(".")[0] in {h.split(".")[0] for h in HEAVY}]
    heavy_loaded = [m for m in loaded if any(m == h or m.startswith(h + ".") for h in HEAVY)]
    assert heavy_loaded == [], f"{' '.join(args)} imported {heavy_loaded[:10]}"
    assert "Usage" in result.stdout
