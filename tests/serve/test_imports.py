"""`skinctl --help` and the help of serve, model and api-key must not pay for the server's
libraries (FastAPI, uvicorn, prometheus-client) or TensorFlow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_help_does_not_import_the_server_libraries():
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from skinctl.cli import app\n"
        "for args in (['--help'], ['serve', '--help'], ['model', '--help'], ['model', 'promote', '--help'],\n"
        "             ['api-key', 'create', '--help']):\n"
        "    result = CliRunner().invoke(app, args)\n"
        "    assert result.exit_code == 0, result.output\n"
        "heavy = [m for m in ('fastapi', 'uvicorn', 'starlette', 'prometheus_client', 'tensorflow',\n"
        "                     'keras', 'numpy', 'sqlalchemy') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
