"""`skinctl serve` as a real uvicorn process on loopback, called with httpx: answers, keys,
bad input, a promotion swap under load, --record, the database going away, a bounded load test.

The module trains two tiny models once (tests/serve/conftest.py) and shares their rows."""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import threading
import time
from datetime import datetime

import httpx
import pytest
from PIL import Image
from sqlalchemy import create_engine, insert, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from skinctl.db import migrate
from skinctl.db.engine import make_engine
from skinctl.db.models import (
    ConditionLabel,
    LabelHistory,
    ModelPromotion,
    TrainingImage,
    TrainingRun,
)
from skinctl.labels import LabelFilter, LabelService, LabelStatus
from skinctl.registry.service import demote, promote
from skinctl.registry.tasks import Task
from skinctl.serve.keys import create_key, revoke_key
from skinctl.storage import content_key
from tests.serve.conftest import clone_run, encoded, jpeg, start_server

pytestmark = pytest.mark.slow

ANALYZE = "/api/v1/ml/analyze-condition"
MAX_BYTES = 300_000


@pytest.fixture(scope="module")
def served(runs, session_engine, database_url, serve_home):
    storage = runs["storage"]
    promote(session_engine, storage, runs["a"], Task.condition, user="tester", force=True)
    promote(session_engine, storage, runs["severity"], Task.severity, user="tester", force=True)
    promote(session_engine, storage, runs["skin_type"], Task.skin_type, user="tester", force=True)
    key = create_key(session_engine, "tests", user="tester").key
    server = start_server(database_url, serve_home, "--max-bytes", str(MAX_BYTES))
    yield {
        **runs,
        "server": server,
        "url": server.url,
        "key": key,
        "auth": {"Authorization": f"Bearer {key}"},
    }
    server.stop()


def wait_until_serving(url: str, auth: dict, run_id: int) -> None:
    deadline = time.monotonic() + 15
    while True:
        models = httpx.get(f"{url}/api/v1/ml/models", headers=auth).json()["models"]
        if any(m["task"] == "condition" and m["run_id"] == run_id for m in models):
            return
        assert time.monotonic() < deadline, models
        time.sleep(0.1)


def post_image(
    url: str,
    data: bytes,
    headers: dict,
    *,
    content_type: str = "image/jpeg",
    client: httpx.Client | None = None,
) -> httpx.Response:
    call = client.post if client else httpx.post
    return call(
        f"{url}{ANALYZE}",
        files={"image": ("face.jpg", data, content_type)},
        headers=headers,
        timeout=30,
    )


def assert_error(response: httpx.Response, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "request_id"} and body["request_id"], body
    assert words in body["error"], body
    assert "Traceback" not in response.text


def test_a_promoted_model_answers_with_confidences_over_its_classes(served):
    response = post_image(served["url"], jpeg("eczema", seed=11), served["auth"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert response.headers["x-request-id"] == body["request_id"]
    conditions = body["conditions"]
    assert sorted(c["condition"] for c in conditions) == served["classes"]
    assert math.isclose(sum(c["confidence"] for c in conditions), 1.0, abs_tol=1e-5)
    assert [c["confidence"] for c in conditions] == sorted(
        (c["confidence"] for c in conditions), reverse=True
    )
    assert body["top"] == conditions[0]
    assert body["severity"]["level"] in ("mild", "moderate", "severe")
    assert 0 < body["severity"]["confidence"] <= 1
    assert body["skin_type"]["type"] in ("dry", "normal", "oily")
    assert body["skin_type"]["all"][0] == {
        "type": body["skin_type"]["type"],
        "confidence": body["skin_type"]["confidence"],
    }
    used = {m["task"]: m for m in body["models"]}
    assert set(used) == {"condition", "severity", "skin-type"}
    assert used["skin-type"]["run_id"] == served["skin_type"]
    assert used["condition"]["run_id"] == served["a"]
    assert set(used["condition"]) == {
        "task",
        "run_id",
        "name",
        "version",
        "architecture",
        "test_accuracy",
        "accuracy_ci95",
        "majority_rate",
        "beats_majority",
    }
    assert body["input"]["width"] == 96 and body["input"]["format"] == "JPEG"
    assert body["input"]["quality_flags"] == [] and body["warning"] is None
    assert body["took_ms"] > 0

    # a small, dark photo is answered, with the ingest analysis's flags and a warning
    dark = encoded(Image.new("RGB", (40, 40), (5, 5, 5)), "PNG")
    flagged = post_image(served["url"], dark, served["auth"], content_type="image/png").json()
    assert {"dark", "small"} <= set(flagged["input"]["quality_flags"])
    assert "unfit" in flagged["warning"]


def test_a_stored_image_is_analysed_by_id(served, session_engine):
    with Session(session_engine) as session:
        image_id = session.scalar(select(TrainingImage.id).order_by(TrainingImage.id).limit(1))
    response = httpx.post(
        f"{served['url']}{ANALYZE}", json={"image_id": image_id}, headers=served["auth"], timeout=30
    )
    assert response.status_code == 200, response.text
    assert response.json()["input"]["image_id"] == image_id
    missing = httpx.post(
        f"{served['url']}{ANALYZE}", json={"image_id": 10**9}, headers=served["auth"]
    )
    assert_error(missing, 404, "does not exist")
    assert_error(
        httpx.post(f"{served['url']}{ANALYZE}", json={"image": 1}, headers=served["auth"]),
        422,
        "image_id",
    )


def test_401_without_a_key_with_a_wrong_one_and_with_a_revoked_one(served, session_engine):
    url = served["url"]
    assert_error(post_image(url, jpeg(), {}), 401, "API key")
    assert_error(post_image(url, jpeg(), {"Authorization": "Bearer skk_wrong"}), 401, "API key")
    assert_error(post_image(url, jpeg(), {"Authorization": served["key"]}), 401, "API key")
    # without a key the body is never read: a huge upload is answered 401, not 413
    huge = post_image(url, b"x" * (MAX_BYTES * 2), {})
    assert huge.status_code == 401
    assert httpx.get(f"{url}/api/v1/ml/models").status_code == 401

    fresh = create_key(session_engine, "short-lived", user="tester").key
    bearer = {"Authorization": f"Bearer {fresh}"}
    deadline = time.monotonic() + 5
    while post_image(url, jpeg(), bearer).status_code != 200:  # a new key works within a poll
        assert time.monotonic() < deadline, "the new key is not accepted"
        time.sleep(0.1)
    revoke_key(session_engine, "short-lived", user="tester")
    deadline = time.monotonic() + 10
    while post_image(url, jpeg(), bearer).status_code != 401:
        assert time.monotonic() < deadline, "the revoked key is still accepted"
        time.sleep(0.2)
    log = served["server"].output()
    assert fresh not in log and served["key"] not in log  # keys never reach the log


def bad_inputs() -> dict[str, tuple[bytes, str, int, str]]:
    """name -> (bytes, part content type, expected status, words in the error)."""
    good = jpeg("rosacea", seed=3)
    return {
        "not an image": (b"this is not an image at all", "image/jpeg", 422, "not_an_image"),
        "truncated": (good[: len(good) // 2], "image/jpeg", 422, "truncated"),
        "too many pixels": (
            encoded(Image.new("1", (10_000, 9_000)), "PNG"),
            "image/png",
            422,
            "too_many_pixels",
        ),
        "cmyk": (
            encoded(Image.new("CMYK", (64, 64), (10, 20, 30, 0)), "JPEG"),
            "image/jpeg",
            422,
            "unsupported_mode",
        ),
        "16-bit": (
            encoded(Image.new("I;16", (64, 64), 3000), "PNG"),
            "image/png",
            422,
            "unsupported_mode",
        ),
        "text part": (good, "text/plain", 415, "text/plain"),
    }


def test_413_415_422_on_bad_input_and_the_server_still_answers(served):
    url, auth = served["url"], served["auth"]
    for name, (data, part_type, status, words) in bad_inputs().items():
        response = post_image(url, data, auth, content_type=part_type)
        assert response.status_code == status, (name, response.text)
        assert_error(response, status, words)
    # declared too large: refused before the body is read
    assert_error(post_image(url, b"\xff" * (MAX_BYTES + 20_000), auth), 413, "over the limit")
    # streamed without a length: cut off once it passes the limit

    def chunks():
        yield (
            b'--xyz\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n'
            b"Content-Type: image/jpeg\r\n\r\n"
        )
        for _ in range(40):
            yield b"\xff" * 16_384
        yield b"\r\n--xyz--\r\n"

    streamed = httpx.post(
        f"{url}{ANALYZE}",
        content=chunks(),
        timeout=30,
        headers={**auth, "Content-Type": "multipart/form-data; boundary=xyz"},
    )
    assert_error(streamed, 413, "over the limit")
    assert_error(
        httpx.post(
            f"{url}{ANALYZE}", content=b"hello", headers={**auth, "Content-Type": "text/plain"}
        ),
        415,
        "text/plain",
    )
    assert_error(
        httpx.post(
            f"{url}{ANALYZE}", files={"photo": ("a.jpg", jpeg(), "image/jpeg")}, headers=auth
        ),
        422,
        "`image`",
    )
    assert_error(
        httpx.post(
            f"{url}{ANALYZE}",
            content=b"{not json",
            headers={**auth, "Content-Type": "application/json"},
        ),
        422,
        "image_id",
    )
    assert_error(httpx.get(f"{url}/nowhere"), 404, "Not Found")
    assert served["server"].alive()
    assert post_image(url, jpeg(), auth).status_code == 200


def test_health_readiness_models_and_metrics(served):
    url = served["url"]
    assert httpx.get(f"{url}/healthz").json() == {"status": "alive"}
    ready = httpx.get(f"{url}/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    models = httpx.get(f"{url}/api/v1/ml/models", headers=served["auth"]).json()
    assert {m["task"] for m in models["models"]} == {"condition", "severity", "skin-type"}
    assert httpx.get(f"{url}/docs").status_code == 200
    assert ANALYZE in httpx.get(f"{url}/openapi.json").json()["paths"]
    metrics = httpx.get(f"{url}/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    text_ = metrics.text
    assert f'skinctl_http_requests_total{{method="POST",route="{ANALYZE}",status="200"}}' in text_
    assert 'status="401"' in text_ and "skinctl_http_request_duration_seconds_bucket" in text_
    assert f'run_id="{served["a"]}"' in text_ and 'task="condition"' in text_
    assert "skinctl_model_batch_size_count" in text_ and "skinctl_database_up 1.0" in text_


def test_a_promotion_swaps_the_model_while_requests_run(served, session_engine):
    """Requests keep flowing while run B is promoted: none fails, and B takes over."""
    url, auth = served["url"], served["auth"]
    results: list[tuple[float, int, int | None]] = []
    stop = threading.Event()

    async def load() -> None:
        async with httpx.AsyncClient(timeout=30, headers=auth) as client:

            async def worker(n: int) -> None:
                i = 0
                while not stop.is_set():
                    i += 1
                    response = await client.post(
                        url + ANALYZE,
                        files={"image": ("f.jpg", jpeg("acne", seed=n * 1000 + i), "image/jpeg")},
                    )
                    run_id = None
                    if response.status_code == 200:
                        run_id = next(
                            m["run_id"]
                            for m in response.json()["models"]
                            if m["task"] == "condition"
                        )
                    results.append((time.monotonic(), response.status_code, run_id))

            await asyncio.gather(*(worker(n) for n in range(6)))

    thread = threading.Thread(target=lambda: asyncio.run(load()))
    thread.start()
    try:
        time.sleep(1.0)
        promoted_at = time.monotonic()
        promote(
            session_engine,
            served["storage"],
            served["b"],
            Task.condition,
            user="tester",
            force=True,
        )
        deadline = time.monotonic() + 30
        while not any(r[2] == served["b"] for r in results[-5:]):
            assert time.monotonic() < deadline, "run B never took over"
            time.sleep(0.2)
        time.sleep(0.5)
    finally:
        stop.set()
        thread.join(60)
    assert results and all(status == 200 for _, status, _ in results), {s for _, s, _ in results}
    before = [r for r in results if r[0] < promoted_at]
    assert before and all(r[2] == served["a"] for r in before)
    assert results[-1][2] == served["b"]
    # back to A for the tests that follow
    promote(
        session_engine, served["storage"], served["a"], Task.condition, user="tester", force=True
    )


def test_record_stores_the_image_and_pending_model_labels_the_queue_shows(
    served, session_engine, database_url, serve_home
):
    server = start_server(database_url, serve_home, "--record", log_name="record.log")
    try:
        data = jpeg("rosacea", seed=77)
        first = post_image(server.url, data, served["auth"])
        assert first.status_code == 200, first.text
        body = first.json()
        recorded = body["recorded"]
        assert recorded["new_image"] is True and len(recorded["label_ids"]) == 2
        again = post_image(server.url, data, served["auth"]).json()["recorded"]
        assert again == {"image_id": recorded["image_id"], "new_image": False, "label_ids": []}
    finally:
        server.stop()
    with Session(session_engine) as session:
        image = session.get_one(TrainingImage, recorded["image_id"])
        label, skin = (session.get_one(ConditionLabel, i) for i in recorded["label_ids"])
        created = session.scalars(
            select(LabelHistory).where(LabelHistory.label_id == label.id)
        ).all()
    assert image.dataset_source == "api" and image.image_hash == body["input"]["sha256"]
    assert served["storage"].get(content_key(image.image_hash, "jpg")) == data
    assert (label.source, label.status, label.verified, label.task) == (
        "model",
        "pending",
        False,
        "condition",
    )
    assert label.condition_type == body["top"]["condition"]
    assert label.confidence_score == pytest.approx(body["top"]["confidence"])
    assert label.severity_level == body["severity"]["level"]
    assert (
        label.metadata_["run_id"] == served["a"]
        and label.metadata_["request_id"] == body["request_id"]
    )
    assert [h.action for h in created] == ["create"] and created[0].changed_by == "serve-tester"
    assert (skin.task, skin.source, skin.status) == ("skin_type", "model", "pending")
    assert (
        skin.condition_type == body["skin_type"]["type"]
        and skin.metadata_["run_id"] == served["skin_type"]
    )
    queue = LabelService(session_engine, "reviewer").queue(
        LabelFilter(status=LabelStatus.pending, dataset="api")
    )
    assert queue == recorded["label_ids"]


def test_analysis_continues_when_the_database_goes_away(
    runs, session_engine, server_url, serve_home
):
    name = f"skinctl_serve_away_{int(time.time())}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    server = None
    try:
        migrate.upgrade(engine)
        with Session(session_engine) as session:
            source = session.get_one(TrainingRun, runs["a"])
            columns = {c.key: getattr(source, c.key) for c in TrainingRun.__mapper__.column_attrs}
        with engine.begin() as connection:
            connection.execute(insert(TrainingRun).values(**columns))
        promote(engine, runs["storage"], runs["a"], Task.condition, user="tester", force=True)
        engine.dispose()
        server = start_server(url, serve_home, "--no-auth", log_name="away.log")
        assert post_image(server.url, jpeg(), {}).status_code == 200
        with admin.connect() as connection:
            connection.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name},
            )
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        deadline = time.monotonic() + 20
        while (ready := httpx.get(f"{server.url}/readyz")).status_code != 503:
            assert time.monotonic() < deadline, ready.text
            time.sleep(0.2)
        assert ready.json()["missing"] == ["database"] and ready.json()["models"] == {
            "condition": runs["a"]
        }
        answered = post_image(server.url, jpeg("eczema", seed=5), {})
        assert answered.status_code == 200, answered.text
        assert "skinctl_database_up 0.0" in httpx.get(f"{server.url}/metrics").text
        by_id = httpx.post(f"{server.url}{ANALYZE}", json={"image_id": 1})
        assert_error(by_id, 503, "database is unreachable")
    finally:
        if server is not None:
            server.stop()
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_bounded_load_500_requests_at_concurrency_16_with_10_percent_bad(served):
    """A fixed number of requests; stops by itself. Good ones 200, bad ones 4xx, server alive."""
    url, auth = served["url"], served["auth"]
    wait_until_serving(url, auth, served["a"])
    bad = list(bad_inputs().values()) + [
        (b"", "no key", 401, "API key"),
        (b"\xff" * (MAX_BYTES + 20_000), "image/jpeg", 413, "limit"),
    ]
    plan = []
    for i in range(500):
        if i % 10 == 3:
            plan.append(("bad", bad[(i // 10) % len(bad)]))
        else:
            plan.append(
                (
                    "good",
                    (
                        jpeg(("acne", "eczema", "rosacea")[i % 3], seed=i, size=64),
                        "image/jpeg",
                        200,
                        "",
                    ),
                )
            )
    outcomes: list[tuple[str, int, str]] = []

    async def run() -> None:
        queue: asyncio.Queue = asyncio.Queue()
        for item in plan:
            queue.put_nowait(item)
        async with httpx.AsyncClient(timeout=60) as client:

            async def worker() -> None:
                while not queue.empty():
                    kind, (data, part_type, expected, _) = queue.get_nowait()
                    headers = {} if part_type == "no key" else auth
                    response = await client.post(
                        url + ANALYZE,
                        headers=headers,
                        files={
                            "image": (
                                "x.jpg",
                                data,
                                "image/jpeg" if part_type == "no key" else part_type,
                            )
                        },
                    )
                    outcomes.append((kind, response.status_code, response.text[:200]))

            await asyncio.gather(*(worker() for _ in range(16)))

    asyncio.run(run())
    assert len(outcomes) == 500
    good = [o for o in outcomes if o[0] == "good"]
    wrong = [o for o in good if o[1] != 200]
    assert len(good) == 450 and not wrong, wrong[:3]
    bad_answers = [o for o in outcomes if o[0] == "bad"]
    assert len(bad_answers) == 50 and all(400 <= o[1] < 500 for o in bad_answers), bad_answers[:3]
    assert all(
        json.loads(o[2]) if o[1] != 200 and o[2].endswith("}") else True for o in bad_answers
    )
    assert served["server"].alive()
    assert httpx.get(f"{url}/healthz").status_code == 200


def test_demoting_the_condition_model_makes_the_server_unready(served, session_engine):
    wait_until_serving(served["url"], served["auth"], served["a"])
    demote(session_engine, Task.condition, user="tester")
    try:
        deadline = time.monotonic() + 10
        while (ready := httpx.get(f"{served['url']}/readyz")).status_code != 503:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert ready.json()["missing"] == ["condition model"]
        assert_error(post_image(served["url"], jpeg(), served["auth"]), 503, "No condition model")
    finally:
        promote(
            session_engine,
            served["storage"],
            served["a"],
            Task.condition,
            user="tester",
            force=True,
        )


def test_a_model_file_changed_since_promotion_is_refused_and_the_old_model_keeps_serving(
    served, session_engine, serve_home
):
    storage = served["storage"]
    wait_until_serving(served["url"], served["auth"], served["a"])
    with Session(session_engine) as session:
        uri = session.get_one(TrainingRun, served["b"]).model_uri
    original = storage.get(storage.key_for(uri))
    checksum = hashlib.sha256(original).hexdigest()
    storage.put("models/changed.keras", original + b"changed after promotion")
    changed = clone_run(
        session_engine, served["b"], model_uri=storage.url_for("models/changed.keras")
    )
    # The server keeps verified copies by checksum (B's, from the swap test): without one it
    # must read the store's file, and find it changed.
    (serve_home / "models" / f"sha256-{checksum}.keras").unlink(missing_ok=True)
    with Session(session_engine) as session, session.begin():  # promoted, then the file changed
        session.execute(
            update(ModelPromotion)
            .where(ModelPromotion.task == "condition", ModelPromotion.demoted_at.is_(None))
            .values(demoted_at=datetime.now(), demoted_by="tester")
        )
        row = ModelPromotion(
            task="condition",
            alias="production",
            run_id=changed,
            model_uri=storage.url_for("models/changed.keras"),
            model_sha256=checksum,
            checksum_source="promotion",
            promoted_by="tester",
        )
        session.add(row)
        session.flush()
        promotion_id = row.id
    try:
        deadline = time.monotonic() + 15
        while True:
            models = httpx.get(f"{served['url']}/api/v1/ml/models", headers=served["auth"]).json()
            if any(f["promotion_id"] == promotion_id for f in models["failed"]):
                break
            assert time.monotonic() < deadline, models
            time.sleep(0.2)
        (failed,) = [f for f in models["failed"] if f["promotion_id"] == promotion_id]
        assert "changed since it was recorded" in failed["error"]
        answer = post_image(served["url"], jpeg(), served["auth"])
        assert answer.status_code == 200, answer.text
        assert answer.json()["models"][0]["run_id"] == served["a"]  # the old model still serves
        assert httpx.get(f"{served['url']}/readyz").status_code == 200
    finally:
        promote(session_engine, storage, served["a"], Task.condition, user="tester", force=True)
