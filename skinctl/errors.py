"""The one error hierarchy. Each class says what failed, maps to an exit code, and carries a hint.

Services raise these; `skinctl.cli` renders them once, on stderr, as one sentence and a hint.
Messages must never contain secrets: callers pass masked URLs (see `skinctl.config.mask_url`).
"""

from __future__ import annotations

# Exit codes (README, "Errors and exit codes"): 0 success, 1 failure, 2 bad usage or
# configuration, 3 finished but some inputs were rejected, 130 interrupted (Ctrl-C).
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_REJECTED = 3
EXIT_INTERRUPTED = 130


class SkinctlError(Exception):
    """A failure skinctl understands. `message` is one sentence; `hint` says what to do."""

    exit_code = EXIT_FAILURE
    default_hint: str | None = None

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint if hint is not None else self.default_hint

    def __str__(self) -> str:
        return self.message


class UsageError(SkinctlError):
    """Bad arguments that Typer's own parsing could not catch."""

    exit_code = EXIT_USAGE


class ConfigError(SkinctlError):
    """A bad setting: unknown key, bad value, unreadable skinctl.toml."""

    exit_code = EXIT_USAGE
    default_hint = "Run `skinctl config show` to see every setting and where it comes from."


class DatabaseUnavailable(SkinctlError):
    """The database server cannot be reached or refused the connection."""

    exit_code = EXIT_USAGE


class SchemaOutOfDate(SkinctlError):
    """The database schema is not at the revision this skinctl needs."""

    exit_code = EXIT_USAGE


class EmbeddedServerError(SkinctlError):
    """The embedded PostgreSQL could not be initialised, started or stopped."""

    exit_code = EXIT_FAILURE


class NotFound(SkinctlError):
    """A named thing (image, label, run, dataset, product) does not exist."""

    exit_code = EXIT_FAILURE


class Conflict(SkinctlError):
    """Someone else changed the row since it was read (optimistic locking)."""

    exit_code = EXIT_FAILURE
    default_hint = "Reload and apply your change again."


class InputRejected(SkinctlError):
    """Input that cannot be used at all (a missing file, an unreadable label CSV)."""

    exit_code = EXIT_USAGE


class StorageError(SkinctlError):
    """The image store failed: missing object, checksum mismatch, no credentials."""

    exit_code = EXIT_FAILURE


class FetchError(SkinctlError):
    """A dataset could not be downloaded, verified or extracted."""

    exit_code = EXIT_FAILURE


class CredentialsError(FetchError):
    """Credentials are missing or were rejected (never printed)."""

    exit_code = EXIT_USAGE


class FileAccessError(SkinctlError):
    """A file or folder skinctl was told to use cannot be read or written (an unwritable
    `--report` or export path, a file where a folder should be, a full disk)."""

    exit_code = EXIT_FAILURE
    default_hint = "Check that the folder exists and is writable, or give another path."

    @classmethod
    def from_os_error(cls, error: OSError) -> FileAccessError:
        """One sentence naming the path and the system's reason, e.g. `Cannot use
        /etc/hostname/x.csv: Not a directory.`"""
        reason = error.strerror or str(error) or type(error).__name__
        paths = [str(path) for path in (error.filename, error.filename2) if path is not None]
        if not paths:
            return cls(f"A file operation failed: {reason}.")
        return cls(f"Cannot use {' -> '.join(paths)}: {reason}.")


class TrainingError(SkinctlError):
    """Training or prediction could not run."""

    exit_code = EXIT_FAILURE
