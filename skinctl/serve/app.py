"""The HTTP API: FastAPI on uvicorn.

- `POST /api/v1/ml/analyze-condition`: multipart field `image`, or JSON `{"image_id": N}`.
- `GET /api/v1/ml/models`, `GET /healthz`, `GET /readyz`, `GET /metrics`, OpenAPI at `/docs`.

Requests to `/api/` pass a guard before anything reads their body: the API key (401), the
declared size (413), the content type (415); the body is then counted as it arrives and cut off
at the limit (413). Every error is JSON `{"error": ..., "request_id": ...}`. The promoted
models are loaded at start and re-checked every `poll_seconds`: a new promotion is loaded
beside the serving model and swapped in with one assignment; a request keeps the models it
started with. When the database goes away the loaded models keep answering.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import traceback
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Message

from skinctl.console import to_json
from skinctl.ingest.imageproc import DEFAULT_MAX_PIXELS, ImageFacts, ImageRejected, analyse_bytes
from skinctl.registry.tasks import Task
from skinctl.serve.batching import Batcher
from skinctl.serve.models import ServedModel

log = logging.getLogger("uvicorn.error")  # uvicorn's configured logger: our lines beside its own

CONFIG_ENV = "SKINCTL_SERVE_CONFIG"  # how `--workers N` hands the configuration to each worker
API = "/api/v1/ml"
ROUTES = {
    f"{API}/analyze-condition",
    f"{API}/models",
    "/healthz",
    "/readyz",
    "/metrics",
    "/docs",
    "/openapi.json",
}
MULTIPART_ALLOWANCE = 16 * 1024  # multipart framing around the image, on top of --max-bytes
UNFIT_FLAGS = ("dark", "bright", "blurry", "near_constant", "small", "odd_aspect")
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


@dataclass(frozen=True)
class ServeConfig:
    database_url: str
    storage_url: str
    home: str
    user: str = "skinctl-serve"
    auth: bool = True
    max_bytes: int = 10 * 1024 * 1024
    max_pixels: int = DEFAULT_MAX_PIXELS
    record: bool = False
    poll_seconds: float = 2.0
    alias: str = "production"
    max_batch: int = 32
    batch_wait_ms: float = 4.0

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> ServeConfig:
        return cls(**json.loads(os.environ[CONFIG_ENV]))


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class BodyTooLarge(Exception):
    pass


def error_response(
    status: int, message: str, request_id: str | None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": message, "request_id": request_id}, status_code=status, headers=headers
    )


class Metrics:
    """Prometheus metrics in a registry of this app's own (several apps may share a process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "skinctl_http_requests",
            "HTTP requests by route, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "skinctl_http_request_duration_seconds",
            "Request latency by route",
            ["route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "skinctl_model_batch_size",
            "Images per model call",
            buckets=(1, 2, 4, 8, 16, 32, 64),
            registry=self.registry,
        )
        self.models = Gauge(
            "skinctl_model_info",
            "The models serving (value 1), by task and run",
            ["task", "alias", "run_id", "name", "version", "sha256"],
            registry=self.registry,
        )
        self.database_up = Gauge(
            "skinctl_database_up", "1 when the last database poll succeeded", registry=self.registry
        )


class ServerState:
    """What the app holds between requests: models, keys, the database's health."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.metrics = Metrics()
        self.batcher = Batcher(
            max_batch=config.max_batch,
            max_wait=config.batch_wait_ms / 1000,
            on_batch=self.metrics.batch_size.observe,
        )
        self.models: dict[Task, ServedModel] = {}  # replaced whole, never changed in place
        self.failed: dict[int, str] = {}  # promotion id -> why its model could not be loaded
        self.keys: dict[str, str] = {}  # SHA-256 of a live key -> its name
        self.keys_checked = 0.0
        self.database_error: str | None = None
        # Image validation runs here, one thread per core: more threads only fight over the GIL.
        self.validators = ThreadPoolExecutor(
            max_workers=os.cpu_count() or 2, thread_name_prefix="skinctl-validate"
        )
        self.engine: Any = None
        self.storage: Any = None
        self._refresh_lock = asyncio.Lock()

    # -- the database: promotions and keys -------------------------------------------------

    def connect(self) -> None:
        from skinctl.db.engine import make_engine
        from skinctl.storage import open_storage

        self.storage = open_storage(self.config.storage_url)
        self.engine = make_engine(self.config.database_url, application_name="skinctl-serve")

    def refresh(self) -> None:
        """Poll the registry and the keys; load new promotions beside the serving models and
        swap them in. Runs in a thread; a failing database leaves everything loaded as it is."""
        from skinctl.registry.service import live_promotions
        from skinctl.serve.keys import live_key_hashes
        from skinctl.serve.models import load_served_model

        try:
            promotions = live_promotions(self.engine, alias=self.config.alias)
            self.keys, self.keys_checked = live_key_hashes(self.engine), time.monotonic()
        except SQLAlchemyError as error:
            if self.database_error is None:
                log.warning(
                    "database unreachable; serving the loaded models: %s", _first_line(error)
                )
            self.database_error = _first_line(error)
            self.metrics.database_up.set(0)
            return
        if self.database_error is not None:
            log.info("database reachable again")
        self.database_error = None
        self.metrics.database_up.set(1)
        current = self.models
        wanted: dict[Task, ServedModel] = {}
        for promotion in promotions:
            task = Task(promotion.task)
            serving = current.get(task)
            if serving is not None and serving.facts.promotion_id == promotion.id:
                wanted[task] = serving
                continue
            if promotion.id in self.failed:
                if serving is not None:
                    wanted[task] = serving  # keep serving the old one rather than nothing
                continue
            try:
                wanted[task] = load_served_model(
                    self.engine, self.storage, promotion, Path(self.config.home)
                )
                log.info(
                    "loaded run %s for %s (promotion %s)",
                    promotion.run_id,
                    task.value,
                    promotion.id,
                )
            except Exception as error:  # noqa: BLE001 - any failed load is reported; others serve
                # replaced whole: the event loop may be reading it meanwhile
                self.failed = {**self.failed, promotion.id: _first_line(error)}
                log.error(
                    "cannot load run %s for %s: %s",
                    promotion.run_id,
                    task.value,
                    _first_line(error),
                )
                if serving is not None:
                    wanted[task] = serving
        live = {promotion.id for promotion in promotions}
        if not set(self.failed) <= live:  # forget failures of promotions no longer live
            self.failed = {pid: why for pid, why in self.failed.items() if pid in live}
        if wanted.keys() != current.keys() or any(wanted[t] is not current.get(t) for t in wanted):
            self.models = wanted  # the swap: one assignment
            self.metrics.models.clear()
            for task, model in wanted.items():
                f = model.facts
                self.metrics.models.labels(
                    task.value,
                    self.config.alias,
                    str(f.run_id),
                    f.name,
                    f.version or "",
                    f.model_sha256[:12],
                ).set(1)

    async def poll(self) -> None:
        while True:
            await asyncio.sleep(self.config.poll_seconds)
            async with self._refresh_lock:
                await asyncio.to_thread(self.refresh)

    async def authenticate(self, header: bytes | None) -> bool:
        from skinctl.serve.keys import key_hash

        if not header:
            return False
        scheme, _, key = header.decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            return False
        digest = key_hash(key.strip())
        if digest in self.keys:
            return True
        # A key created since the last poll: look again (at most 4 times a second, so bad keys
        # cannot turn into a flood of queries).
        if time.monotonic() - self.keys_checked > 0.25 and self.database_error is None:
            from skinctl.serve.keys import live_key_hashes

            self.keys_checked = time.monotonic()  # before the query: one look at a time
            try:
                self.keys = await asyncio.to_thread(live_key_hashes, self.engine)
                self.keys_checked = time.monotonic()
            except SQLAlchemyError:  # the database is unreachable: no key is known to be live
                return False
        return digest in self.keys


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).strip()
    return (text.splitlines()[0] if text else type(error).__name__)[:300]


# -- the guard: runs before anything reads the body ------------------------------------------


class Guard:
    """Pure ASGI middleware: request id, metrics, and for `/api/` the key, size and type checks
    before the body is read; the body is counted as it arrives and cut off at the limit."""

    def __init__(self, app: Any, state: ServerState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = [500]
        response_started = [False]

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                response_started[0] = True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        async def answer(code: int, text: str, headers: dict[str, str] | None = None) -> None:
            await error_response(code, text, request_id, headers)(scope, receive, send_with_id)

        config = self.state.config
        path = scope["path"]
        try:
            if path.startswith("/api/"):
                headers = dict(scope["headers"])
                if config.auth and not await self.state.authenticate(headers.get(b"authorization")):
                    await answer(
                        401,
                        "Missing or invalid API key: send Authorization: Bearer KEY "
                        "(`skinctl api-key create NAME` makes one).",
                        {"WWW-Authenticate": "Bearer"},
                    )
                    return
                if scope["method"] == "POST":
                    limit = config.max_bytes + MULTIPART_ALLOWANCE
                    declared = headers.get(b"content-length")
                    if declared is not None and (not declared.isdigit() or int(declared) > limit):
                        await answer(
                            413,
                            f"The request body ({declared.decode('latin-1')} bytes) "
                            f"is over the limit of {config.max_bytes} bytes.",
                        )
                        return
                    kind = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
                    if kind not in (b"multipart/form-data", b"application/json"):
                        await answer(
                            415,
                            f"Content type {kind.decode('latin-1') or 'none'!r} is not "
                            "accepted: send multipart/form-data with an `image` field, or "
                            'application/json {"image_id": N}.',
                        )
                        return
                    receive = _limited(receive, limit)
            await self.app(scope, receive, send_with_id)
        except Exception as error:  # noqa: BLE001 - the last resort: log it, answer 500
            log.error(
                "request %s failed: %s\n%s",
                request_id,
                _first_line(error),
                "".join(traceback.format_exception(error)),
            )
            if not response_started[0]:
                await answer(500, "Internal error; the request id names it in the server log.")
        finally:
            route = path if path in ROUTES else "other"
            self.state.metrics.requests.labels(route, scope["method"], str(status[0])).inc()
            self.state.metrics.latency.labels(route).observe(time.perf_counter() - started)


def _limited(receive: Any, limit: int) -> Any:
    seen = 0

    async def counted() -> dict:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge()
        return message

    return counted


# -- the app ------------------------------------------------------------------------------------


def create_app(config: ServeConfig) -> Any:
    """The ASGI app: FastAPI wrapped in the Guard."""
    from contextlib import asynccontextmanager

    state = ServerState(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await asyncio.to_thread(state.connect)
        await asyncio.to_thread(state.refresh)  # the promoted models, loaded before serving
        state.batcher.start()
        poller = asyncio.get_running_loop().create_task(state.poll())
        try:
            yield
        finally:
            poller.cancel()
            await state.batcher.stop()
            state.validators.shutdown(wait=False, cancel_futures=True)
            if state.engine is not None:
                state.engine.dispose()

    app = FastAPI(
        title="skinctl analysis API",
        description="Skin condition analysis from the promoted models of the skinctl registry.",
        version="1",
        lifespan=lifespan,
    )
    app.state.server = state

    def request_id(request: Request) -> str | None:
        return getattr(request.state, "request_id", None)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> JSONResponse:
        return error_response(error.status, error.message, request_id(request))

    @app.exception_handler(BodyTooLarge)
    async def too_large(request: Request, error: BodyTooLarge) -> JSONResponse:
        return error_response(
            413,
            f"The request body is over the limit of {config.max_bytes} bytes.",
            request_id(request),
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        return error_response(error.status_code, str(error.detail), request_id(request))

    @app.exception_handler(Exception)
    async def internal(request: Request, error: Exception) -> JSONResponse:
        # Starlette re-raises after this answer; the Guard logs it with the request id.
        return error_response(
            500, "Internal error; the request id names it in the server log.", request_id(request)
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return error_response(
            422, f"Invalid request: {where}: {first.get('msg', 'invalid')}.", request_id(request)
        )

    @app.get("/healthz", summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/readyz", summary="Models loaded and database reachable")
    async def readyz() -> JSONResponse:
        missing = []
        if Task.condition not in state.models:
            missing.append("condition model")
        if state.database_error is not None:
            missing.append("database")
        body = {
            "ready": not missing,
            "missing": missing,
            "models": {task.value: model.facts.run_id for task, model in state.models.items()},
            "database": "ok"
            if state.database_error is None
            else f"unreachable: {state.database_error}",
        }
        return JSONResponse(body, status_code=200 if not missing else 503)

    @app.get("/metrics", summary="Prometheus metrics")
    async def metrics() -> Response:
        return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get(f"{API}/models", summary="The models serving, with their test metrics")
    async def models() -> Response:
        body = {
            "alias": config.alias,
            "models": [model.facts for model in state.models.values()],
            "failed": [{"promotion_id": pid, "error": why} for pid, why in state.failed.items()],
            "database": "ok"
            if state.database_error is None
            else f"unreachable: {state.database_error}",
        }
        return Response(to_json(body), media_type="application/json")

    @app.post(
        f"{API}/analyze-condition",
        summary="Analyse one face photo: conditions with confidences, severity, skin type",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["image"],
                            "properties": {"image": {"type": "string", "format": "binary"}},
                        }
                    },
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["image_id"],
                            "properties": {"image_id": {"type": "integer"}},
                        }
                    },
                },
            }
        },
    )
    async def analyze(request: Request) -> Response:
        return await analyze_condition(state, request)

    return Guard(app, state)


def app_from_environment() -> Any:
    """uvicorn's factory for `--workers N` (each worker process builds its own app)."""
    return create_app(ServeConfig.from_env())


# -- analyze-condition ----------------------------------------------------------------------


async def _read_upload(request: Request, max_bytes: int) -> bytes:
    try:
        form = await request.form(max_files=1, max_fields=8)
    except BodyTooLarge:
        raise
    except Exception as error:  # noqa: BLE001 - python-multipart's parse errors have no common base
        raise ApiError(422, f"Cannot read the multipart body: {_first_line(error)}.") from None
    upload = form.get("image")
    if not isinstance(upload, UploadFile):
        raise ApiError(422, "The multipart field `image` with the image file is missing.")
    declared = (upload.content_type or "").split(";")[0].strip().lower()
    if declared and not (declared.startswith("image/") or declared == "application/octet-stream"):
        raise ApiError(415, f"The `image` part is {declared!r}; send the image file itself.")
    data = await upload.read(max_bytes + 1)
    await form.close()
    if len(data) > max_bytes:
        raise ApiError(413, f"The image is over the limit of {max_bytes} bytes.")
    return data


async def _read_stored(state: ServerState, request: Request) -> tuple[bytes, int]:
    try:
        body = json.loads(await request.body())
        image_id = body["image_id"]
        if not isinstance(image_id, int) or isinstance(image_id, bool):
            raise TypeError
    except BodyTooLarge:
        raise
    except (ValueError, KeyError, TypeError):
        raise ApiError(
            422, 'The JSON body must be {"image_id": N} with N a whole number.'
        ) from None
    if state.database_error is not None:
        raise ApiError(
            503,
            "The database is unreachable, so stored images cannot be read; "
            "upload the image as multipart field `image`.",
        )

    def read() -> bytes:
        from sqlalchemy.orm import Session

        from skinctl.db.models import TrainingImage
        from skinctl.train.pipeline import ByteReader

        with Session(state.engine) as session:
            image = session.get(TrainingImage, image_id)
            url = image.image_url if image is not None else None
        if url is None:
            raise ApiError(404, f"Image {image_id} does not exist.")
        return ByteReader(state.storage).read(url)

    try:
        return await run_in_threadpool(read), image_id
    except ApiError:
        raise
    except Exception as error:  # noqa: BLE001 - any storage backend's failure is a 503
        raise ApiError(503, f"Cannot read stored image {image_id}: {_first_line(error)}.") from None


def _validate(data: bytes, max_pixels: int) -> tuple[ImageFacts, bytes]:
    """Ingest's validation and analysis, then the bytes TensorFlow decodes as training did."""
    from skinctl.serve.models import tf_ready

    try:
        # the input check only: the tone is not part of the answer, and its colour decode costs
        # about 1 ms a request
        facts = analyse_bytes(data, max_pixels, tone=False)
    except ImageRejected as rejected:
        raise ApiError(
            422, f"The image was rejected ({rejected.reason}): {rejected.detail}."
        ) from None
    try:
        return facts, tf_ready(data)
    except Exception as error:  # noqa: BLE001 - the decoder's many error kinds: a bad image
        raise ApiError(422, f"The image was rejected (corrupt): {_first_line(error)}.") from None


def _ranked(model: ServedModel, row: Any) -> list[tuple[str, float]]:
    return sorted(
        zip(model.facts.classes, (float(p) for p in row), strict=True), key=lambda pair: -pair[1]
    )


def _model_entry(model: ServedModel) -> dict[str, Any]:
    f = model.facts
    return {
        "task": f.task.value,
        "run_id": f.run_id,
        "name": f.name,
        "version": f.version,
        "architecture": f.architecture,
        "test_accuracy": f.test_accuracy,
        "accuracy_ci95": f.accuracy_ci95,
        "majority_rate": f.majority_rate,
        "beats_majority": f.beats_majority,
    }


async def analyze_condition(state: ServerState, request: Request) -> Response:
    started = time.perf_counter()
    rid = request.state.request_id
    models = state.models  # this request's models, whatever a swap does meanwhile
    condition = models.get(Task.condition)
    if condition is None:
        raise ApiError(
            503,
            "No condition model is loaded: promote one with "
            "`skinctl model promote RUN --task condition`.",
        )
    image_id = None
    state.batcher.expect()
    try:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "application/json":
            data, image_id = await _read_stored(state, request)
        else:
            data = await _read_upload(request, state.config.max_bytes)
        facts, encoded = await asyncio.get_running_loop().run_in_executor(
            state.validators, _validate, data, state.config.max_pixels
        )
    finally:
        state.batcher.unexpect()

    used = [m for m in (condition, models.get(Task.severity), models.get(Task.skin_type)) if m]
    try:
        outputs = await asyncio.gather(*(state.batcher.submit(m, encoded) for m in used))
    except ApiError:
        raise
    except Exception as error:
        if "InvalidArgument" in type(error).__name__:  # TensorFlow could not decode it
            raise ApiError(422, "The image was rejected (corrupt): it cannot be decoded.") from None
        raise
    by_task = {m.facts.task: (m, row) for m, row in zip(used, outputs, strict=True)}

    ranked = _ranked(condition, by_task[Task.condition][1])
    answer: dict[str, Any] = {
        "request_id": rid,
        "conditions": [{"condition": c, "confidence": p} for c, p in ranked],
        "top": {"condition": ranked[0][0], "confidence": ranked[0][1]},
    }
    if condition.facts.multi_label:
        thresholds = condition.thresholds or {}
        answer["labels"] = [c for c, p in ranked if p >= thresholds.get(c, 0.5)]
    severity = skin_type = None
    if Task.severity in by_task:
        levels = _ranked(*by_task[Task.severity])
        severity = {"level": levels[0][0], "confidence": levels[0][1]}
    if Task.skin_type in by_task:
        types = _ranked(*by_task[Task.skin_type])
        skin_type = {
            "type": types[0][0],
            "confidence": types[0][1],
            "all": [{"type": t, "confidence": p} for t, p in types],
        }
    unfit = [flag for flag in facts.quality_flags if flag in UNFIT_FLAGS]
    answer.update(
        {
            "severity": severity,
            "skin_type": skin_type,
            "models": [_model_entry(m) for m in used],
            "input": {
                "width": facts.width,
                "height": facts.height,
                "format": facts.format,
                "bytes": facts.byte_size,
                "sha256": facts.sha256,
                "quality_flags": facts.quality_flags,
                "image_id": image_id,
            },
            "warning": (
                f"The photo looks unfit for analysis ({', '.join(unfit)}); the answer may be "
                "wrong. Retake it in even light, in focus, with the skin filling the frame."
                if unfit
                else None
            ),
        }
    )
    if not condition.facts.beats_majority:
        answer["model_warning"] = (
            f"The condition model (run {condition.facts.run_id}) does not "
            "beat its majority-class rate on its test set."
        )
    if state.config.record:
        answer["recorded"] = await _record(state, rid, data, facts, ranked, by_task)
    answer["took_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return Response(to_json(answer), media_type="application/json")


async def _record(
    state: ServerState,
    rid: str,
    data: bytes,
    facts: ImageFacts,
    ranked: list[tuple[str, float]],
    by_task: dict,
) -> dict[str, Any]:
    from skinctl.serve.record import ModelAnswer, record_analysis

    condition = by_task[Task.condition][0]
    answer = ModelAnswer(
        "condition", ranked[0][0], ranked[0][1], condition.facts.run_id, dict(ranked)
    )
    if Task.severity in by_task:
        model, row = by_task[Task.severity]
        level, confidence = _ranked(model, row)[0]
        answer = replace(
            answer,
            severity=level,
            severity_confidence=confidence,
            severity_run_id=model.facts.run_id,
        )
    answers = [answer]
    if Task.skin_type in by_task:
        model, row = by_task[Task.skin_type]
        types = _ranked(model, row)
        answers.append(
            ModelAnswer("skin-type", types[0][0], types[0][1], model.facts.run_id, dict(types))
        )
    try:
        recorded = await run_in_threadpool(
            record_analysis,
            state.engine,
            state.storage,
            data=data,
            facts=facts,
            answers=answers,
            request_id=rid,
            user=state.config.user,
        )
    except Exception as error:  # noqa: BLE001 - the answer stands even if recording fails
        log.warning("request %s: not recorded: %s", rid, _first_line(error))
        return {"error": f"not recorded: {_first_line(error)}"}
    return {
        "image_id": recorded.image_id,
        "new_image": recorded.new_image,
        "label_ids": list(recorded.label_ids),
    }
