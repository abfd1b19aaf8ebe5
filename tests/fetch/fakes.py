"""A local HTTP server that plays Kaggle's dataset-download API and a plain file host.

Kaggle (what kagglehub/kagglesdk 1.0 call):
    POST /api/v1/datasets.DatasetApiService/GetDataset       -> {"currentVersionNumber": N, ...}
    POST /api/v1/datasets.DatasetApiService/DownloadDataset  -> 302 to /files/<owner>/<name>/<N>.zip
    GET  /files/<owner>/<name>/<N>.zip                        -> the archive (Range, x-goog-hash md5)
Plain files: GET /plain/<name> (Range supported).

Faults are queued per route: "cut" sends half the body then closes the connection, an int
answers with that status.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import threading
import zipfile
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

API = "/api/v1/datasets.DatasetApiService/"


def build_zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def sample_files(size: int = 300_000) -> dict[str, bytes]:
    """A small skin-types-like tree; incompressible-ish bytes so a cut lands mid-file."""
    import random

    rng = random.Random(7)
    files = {}
    for split in ("train", "valid"):
        for label in ("dry", "normal", "oily"):
            files[f"{split}/{label}/{label}_{split}.jpg"] = rng.randbytes(size // 6)
    return files


@dataclass
class FakeServer:
    datasets: dict[str, tuple[int, bytes]] = field(
        default_factory=dict
    )  # "owner/name" -> (version, zip)
    plain: dict[str, bytes] = field(default_factory=dict)
    faults: dict[str, deque] = field(default_factory=lambda: defaultdict(deque))
    require_auth: set[str] = field(default_factory=set)  # accepted Authorization header values
    log: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    port: int = 0
    ignore_range: bool = False  # answer Range requests with the whole file (200)
    wrong_md5: bool = False  # announce an MD5 that does not match the archive

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fault(self, route: str, *actions: object) -> None:
        """Queue faults for a route: 'get', 'download', 'file' or 'plain'."""
        self.faults[route].extend(actions)

    def requests_to(self, route_prefix: str) -> list[tuple[str, str, dict[str, str]]]:
        return [entry for entry in self.log if entry[1].startswith(route_prefix)]


def make_handler(server: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # keep test output clean
            pass

        def _json(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _fault(self, route: str) -> object | None:
            queue = server.faults.get(route)
            return queue.popleft() if queue else None

        def _authorised(self) -> bool:
            if not server.require_auth:
                return True
            return self.headers.get("Authorization") in server.require_auth

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            server.log.append(("POST", self.path, dict(self.headers)))
            if not self.path.startswith(API):
                return self._json(404, {"code": 404, "message": "no such route"})
            method = self.path[len(API) :]
            route = {"GetDataset": "get", "DownloadDataset": "download"}.get(method)
            fault = self._fault(route)
            if isinstance(fault, int):
                return self._json(fault, {"code": fault, "message": f"injected {fault}"})
            if not self._authorised():
                return self._json(401, {"code": 401, "message": "Unauthenticated"})
            ref = f"{body.get('ownerSlug')}/{body.get('datasetSlug')}"
            if ref not in server.datasets:
                return self._json(404, {"code": 404, "message": f"Dataset {ref} not found"})
            version, _archive = server.datasets[ref]
            if route == "get":
                return self._json(200, {"ref": ref, "currentVersionNumber": version, "title": ref})
            self.send_response(302)
            self.send_header("Location", f"{server.base}/files/{ref}/{version}.zip")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            server.log.append(("GET", self.path, dict(self.headers)))
            if self.path.startswith("/files/"):
                ref, _, version_file = self.path[len("/files/") :].rpartition("/")
                if ref not in server.datasets:
                    return self._json(404, {"code": 404, "message": "no such file"})
                data = server.datasets[ref][1]
                return self._serve(data, "file", md5=True)
            if self.path.startswith("/plain/"):
                name = self.path[len("/plain/") :].split("?", 1)[0]
                if name not in server.plain:
                    return self._json(404, {"code": 404, "message": "no such file"})
                return self._serve(server.plain[name], "plain", md5=False)
            return self._json(404, {"code": 404, "message": "no such route"})

        def _serve(self, data: bytes, route: str, md5: bool) -> None:
            fault = self._fault(route)
            if isinstance(fault, int):
                return self._json(fault, {"code": fault, "message": f"injected {fault}"})
            start = 0
            status = 200
            range_header = self.headers.get("Range")
            if range_header and range_header.startswith("bytes=") and not server.ignore_range:
                start = int(range_header[6:].split("-", 1)[0])
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = 206
            body = data[start:]
            self.send_response(status)
            self.send_header("Content-Type", "application/zip")
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(len(body)))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            if md5:
                digest = base64.b64encode(
                    hashlib.md5(b"other" if server.wrong_md5 else data).digest()
                ).decode()
                self.send_header("x-goog-hash", f"crc32c=AAAAAA==,md5={digest}")
            self.end_headers()
            if fault == "cut":
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


class RunningServer:
    def __init__(self, fake: FakeServer) -> None:
        self.fake = fake
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(fake))
        self.httpd.daemon_threads = True
        fake.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FakeServer:
        self.thread.start()
        return self.fake

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
