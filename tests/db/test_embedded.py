"""The embedded PostgreSQL: first use, reuse from a second process, stale state, up/down."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from skinctl.db.embedded import EmbeddedPostgres
from tests.conftest import Cli


@pytest.fixture
def embedded_home(tmp_path: Path):
    home = tmp_path / "parent" / "home"
    home.parent.mkdir()
    home.parent.chmod(0o700)
    server = EmbeddedPostgres(home)
    yield home
    server.stop()


def _select_one(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT 1")).scalar_one()
    finally:
        engine.dispose()


def test_first_use_announces_then_reuses(embedded_home: Path) -> None:
    messages: list[str] = []
    server = EmbeddedPostgres(embedded_home)
    url = server.ensure_running(announce=messages.append)
    assert len(messages) == 1 and "created an embedded PostgreSQL" in messages[0]
    assert _select_one(url) == 1
    # Nothing outside home changed: the 0700 parent stays 0700.
    assert (embedded_home.parent.stat().st_mode & 0o777) == 0o700
    assert (server.password_file.stat().st_mode & 0o777) == 0o600

    again: list[str] = []
    assert EmbeddedPostgres(embedded_home).ensure_running(announce=again.append) == url
    assert again == []


def test_second_process_shares_the_running_server(embedded_home: Path) -> None:
    url = EmbeddedPostgres(embedded_home).ensure_running(announce=lambda _m: None)
    code = (
        "import sys; from pathlib import Path; from skinctl.db.embedded import EmbeddedPostgres; "
        f"print(EmbeddedPostgres(Path({str(embedded_home)!r})).ensure_running())"
    )
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert other.returncode == 0, other.stderr
    assert other.stdout.strip() == url


def test_concurrent_first_use_initialises_once(embedded_home: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from skinctl.db.embedded import EmbeddedPostgres; "
        f"print(EmbeddedPostgres(Path({str(embedded_home)!r})).ensure_running("
        "announce=lambda message: print(message, file=sys.stderr)))"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    urls = {out.strip() for out, _err in outputs}
    assert len(urls) == 1
    announcements = sum("created an embedded PostgreSQL" in err for _out, err in outputs)
    assert announcements == 1


def test_stale_pid_file_after_a_crash_is_recovered(embedded_home: Path) -> None:
    server = EmbeddedPostgres(embedded_home)
    server.ensure_running(announce=lambda _m: None)
    pid = server.status().pid
    os.kill(pid, signal.SIGKILL)  # a crash: postmaster.pid stays behind
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and server.status().running:
        time.sleep(0.1)
    assert (server.data_dir / "postmaster.pid").exists()
    url = server.ensure_running(announce=lambda _m: None)
    assert _select_one(url) == 1
    assert server.status().pid != pid


def test_pid_file_naming_a_dead_process_is_not_fatal(embedded_home: Path) -> None:
    server = EmbeddedPostgres(embedded_home)
    server.ensure_running(announce=lambda _m: None)
    server.stop()
    (server.data_dir / "postmaster.pid").write_text("999999\n/x\n0\n5\n")
    assert _select_one(server.ensure_running(announce=lambda _m: None)) == 1


def _embedded_cli(embedded_home: Path, tmp_path: Path) -> Cli:
    """The CLI with no database configured: skinctl runs its embedded one under this home."""
    return Cli(
        {
            "SKINCTL_HOME": str(embedded_home),
            "SKINCTL_DATABASE_URL": "",
            "DATABASE_URL": "",
            "SKINCTL_CONFIG": str(tmp_path / "none.toml"),
        }
    )


def test_db_up_status_down_commands(embedded_home: Path, tmp_path: Path) -> None:
    cli = _embedded_cli(embedded_home, tmp_path)
    up = cli("db", "up")
    assert up.exit_code == 0, up.stderr
    assert "created an embedded PostgreSQL" in up.stderr and "is now running" in up.stderr
    upgrade = cli("db", "upgrade")
    assert upgrade.exit_code == 0, upgrade.stderr
    status = cli("db", "status", "--json")
    assert status.exit_code == 0, status.stderr
    assert "embedded" in status.stdout
    down = cli("db", "down")
    assert down.exit_code == 0 and "stopped" in down.stderr
    assert not EmbeddedPostgres(embedded_home).status().running
    down_again = cli("db", "down")
    assert "was not running" in down_again.stderr


def test_pid_file_naming_an_unrelated_live_process_is_stale(embedded_home: Path) -> None:
    server = EmbeddedPostgres(embedded_home)
    server.ensure_running(announce=lambda _m: None)
    server.stop()
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        (server.data_dir / "postmaster.pid").write_text(f"{sleeper.pid}\n/x\n0\n5\n")
        assert _select_one(server.ensure_running(announce=lambda _m: None)) == 1
    finally:
        sleeper.kill()
        sleeper.wait()


def test_first_data_command_on_the_embedded_default_creates_the_schema(
    embedded_home: Path, tmp_path: Path
) -> None:
    from skinctl.db import migrate

    cli = _embedded_cli(embedded_home, tmp_path)
    result = cli("stats", "--json")
    assert result.exit_code == 0, result.stderr
    assert f"created the schema (revision {migrate.head_revision()})" in result.stderr
    again = cli("stats", "--json")
    assert again.exit_code == 0 and "created the schema" not in again.stderr
