"""Kaggle datasets through kagglehub's own API client (kagglesdk), downloaded by skinctl.

kagglehub's client asks Kaggle for the dataset's current version and for its download (a 302 to a
signed archive URL); skinctl then streams the archive itself so it can resume with Range after a
cut, report progress in bytes, verify the MD5 Kaggle announces, and extract it safely into its
own cache. kagglehub and kagglesdk are imported inside functions: they are slow to import.

Credentials are kagglehub's: KAGGLE_API_TOKEN (a token or a file holding one),
~/.kaggle/access_token, KAGGLE_USERNAME + KAGGLE_KEY, or kaggle.json in KAGGLE_CONFIG_DIR
(default ~/.kaggle). Public datasets need none.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from skinctl.errors import CredentialsError, FetchError, NotFound
from skinctl.fetch import download as dl
from skinctl.progress import ReportProgress, no_progress

if TYPE_CHECKING:
    import requests

T = TypeVar("T")


@dataclass(frozen=True)
class CredentialReport:
    found: str | None  # where the credential in use comes from (never the value)
    looked: tuple[str, ...]  # every place skinctl looked, in kagglehub's order


def _config_dir() -> Path:
    return Path(os.environ.get("KAGGLE_CONFIG_DIR") or Path.home() / ".kaggle").expanduser()


def find_credentials() -> CredentialReport:
    """Where kagglehub will take a credential from, in its order; raises on a broken kaggle.json."""
    token_file = Path.home() / ".kaggle" / "access_token"
    kaggle_json = _config_dir() / "kaggle.json"
    looked = (
        "KAGGLE_API_TOKEN",
        str(token_file),
        "KAGGLE_USERNAME/KAGGLE_KEY",
        str(kaggle_json) + (" (KAGGLE_CONFIG_DIR)" if os.environ.get("KAGGLE_CONFIG_DIR") else ""),
    )
    token = os.environ.get("KAGGLE_API_TOKEN")
    if token:
        return CredentialReport("the KAGGLE_API_TOKEN environment variable", looked)
    for candidate in (token_file, token_file.with_suffix(".txt")):
        if candidate.is_file() and candidate.read_text(errors="replace").strip():
            return CredentialReport(str(candidate), looked)
    if os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"):
        return CredentialReport("the KAGGLE_USERNAME/KAGGLE_KEY environment variables", looked)
    if kaggle_json.is_file():
        try:
            data = json.loads(kaggle_json.read_text(encoding="utf-8"))
            ok = isinstance(data, dict) and "username" in data and "key" in data
        except (OSError, ValueError):
            ok = False
        if not ok:
            raise CredentialsError(
                f"{kaggle_json} is not a valid Kaggle credential file.",
                hint='It must be JSON like {"username": "...", "key": "..."}; download a new one '
                "from kaggle.com > Settings > API.",
            )
        return CredentialReport(str(kaggle_json), looked)
    return CredentialReport(None, looked)


def credentials_error(reference: str, status: int) -> CredentialsError:
    report = find_credentials()
    if report.found:
        return CredentialsError(
            f"Kaggle rejected the credential from {report.found} for {reference} ({status}).",
            hint="Create a new API token on kaggle.com > Settings > API, and accept the dataset's "
            "terms on its Kaggle page if it asks for consent.",
        )
    return CredentialsError(
        f"Kaggle refused {reference} without credentials ({status}); skinctl looked in "
        f"{', '.join(report.looked)} and found none.",
        hint="Set KAGGLE_API_TOKEN, or KAGGLE_USERNAME and KAGGLE_KEY, or put kaggle.json in "
        "~/.kaggle (or KAGGLE_CONFIG_DIR).",
    )


def _status(error: Exception) -> int | None:
    response = getattr(error, "response", None)
    return getattr(response, "status_code", None)


@contextmanager
def _kaggle_errors(reference: str) -> Iterator[None]:
    """Turn kagglehub/requests exceptions into one clear SkinctlError."""
    import requests
    from kagglehub.exceptions import KaggleApiHTTPError, UnauthenticatedError

    try:
        yield
    except UnauthenticatedError:
        raise credentials_error(reference, 401) from None
    except KaggleApiHTTPError as error:
        status = _status(error)
        if status in (401, 403):
            raise credentials_error(reference, status) from None
        if status == 404:
            raise NotFound(
                f"Kaggle has no dataset {reference!r} (404).",
                hint="Check the reference (owner/dataset-name as in the dataset's Kaggle URL); a "
                "private dataset also answers 404 to an account without access.",
            ) from None
        raise FetchError(
            f"Kaggle answered {status} for {reference}.", hint="Try again later."
        ) from error
    except requests.ConnectionError as error:
        raise FetchError(
            f"Cannot reach Kaggle for {reference} ({type(error).__name__}).",
            hint="Check the network connection (and any proxy settings), then run again.",
        ) from error


def _with_retries(call: Callable[[], T], attempts: int = dl.ATTEMPTS) -> T:
    """Retry Kaggle API calls on 5xx and dropped connections, with exponential back-off."""
    import requests
    from kagglehub.exceptions import KaggleApiHTTPError

    for attempt in range(attempts):
        try:
            return call()
        except KaggleApiHTTPError as error:
            status = _status(error)
            if status is None or status < 500 or attempt == attempts - 1:
                raise
        except requests.ConnectionError:
            if attempt == attempts - 1:
                raise
        time.sleep(dl.RETRY_BASE_DELAY * 2**attempt)
    raise AssertionError("unreachable")


@contextmanager
def kaggle_client(reference: str) -> Iterator[Any]:
    """kagglehub's authenticated (or anonymous) KaggleClient."""
    find_credentials()  # a broken kaggle.json is reported before kagglehub trips over it
    from kagglehub.clients import build_kaggle_client

    with _kaggle_errors(reference):
        try:
            client = build_kaggle_client()
        except ValueError as error:  # kagglehub's own credential-file complaints
            raise CredentialsError(str(error).split("\n")[0]) from None
        with client:
            yield client


def current_version(client: Any, reference: str) -> int:
    from kagglehub.exceptions import handle_call
    from kagglehub.handle import parse_dataset_handle
    from kagglesdk.datasets.types.dataset_api_service import ApiGetDatasetRequest

    handle = parse_dataset_handle(reference)
    request = ApiGetDatasetRequest()
    request.owner_slug = handle.owner
    request.dataset_slug = handle.dataset
    with _kaggle_errors(reference):
        dataset = _with_retries(
            lambda: handle_call(
                lambda: client.datasets.dataset_api_client.get_dataset(request), handle
            )
        )
    version = dataset.current_version_number
    if not version:
        raise FetchError(f"Kaggle did not say which version of {reference} is current.")
    return int(version)


def download_archive(
    client: Any, reference: str, version: int, part: Path, report: ReportProgress = no_progress
) -> tuple[Path, str | None]:
    """Download the dataset's archive into `part` (resuming), returning it and Kaggle's MD5."""
    from kagglehub.exceptions import handle_call
    from kagglehub.handle import DatasetHandle
    from kagglesdk.datasets.types.dataset_api_service import ApiDownloadDatasetRequest

    owner, name = reference.split("/", 1)
    handle = DatasetHandle(owner=owner, dataset=name, version=version)
    request = ApiDownloadDatasetRequest()
    request.owner_slug = owner
    request.dataset_slug = name
    request.dataset_version_number = version
    signed_url: list[str] = []  # the archive URL after Kaggle's redirect, reused on resume

    def open_response(headers: dict[str, str]) -> requests.Response:
        import requests

        if signed_url:
            return requests.get(signed_url[0], headers=headers, stream=True, timeout=dl.TIMEOUT)
        with _kaggle_errors(reference):
            response = handle_call(
                lambda: client.datasets.dataset_api_client.download_dataset(request), handle
            )
        signed_url.append(response.url)
        if headers and response.headers.get("Accept-Ranges") == "bytes":
            response.close()  # ask the archive host for the missing tail only
            return requests.get(response.url, headers=headers, stream=True, timeout=dl.TIMEOUT)
        return response

    def on_error(response: requests.Response) -> None:
        if response.status_code in (401, 403):
            raise credentials_error(reference, response.status_code)

    def open_with_5xx_retry(headers: dict[str, str]) -> requests.Response:
        from kagglehub.exceptions import KaggleApiHTTPError

        try:
            return open_response(headers)
        except FetchError as error:
            cause = error.__cause__
            if isinstance(cause, KaggleApiHTTPError) and (_status(cause) or 0) >= 500:
                raise dl.RetryableError(str(error)) from None
            raise

    # dl.download retries a RetryableError raised while opening, like a cut connection.
    return dl.download(
        open_with_5xx_retry,
        part,
        label=f"Kaggle dataset {reference}",
        report=report,
        on_error=on_error,
    )
