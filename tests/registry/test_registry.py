"""The model registry and API keys: promotions with history, the majority-rate refusal, the
checksum recorded at training or at promotion, and the CLI (`model ...`, `api-key ...`).

Runs are rows written here with a stand-in model file (promotion never loads the model)."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from skinctl.db.models import ApiKey, ModelPromotion, TrainingRun
from skinctl.errors import NotFound, StorageError, UsageError
from skinctl.registry.service import demote, history, live_promotions, promote
from skinctl.registry.tasks import Task
from skinctl.serve.keys import create_key, key_hash, list_keys, live_key_hashes, revoke_key
from skinctl.storage.local import LocalStorage

MODEL_BYTES = b"not really a keras file, but bytes with a checksum"


@pytest.fixture
def storage(settings):
    return LocalStorage(settings.storage)


def add_run(
    engine,
    storage,
    *,
    task="condition",
    accuracy=0.9,
    ci=(0.8, 0.95),
    majority=0.4,
    checksum: str | None = None,
    data: bytes = MODEL_BYTES,
    status="finished",
) -> int:
    with Session(engine) as session, session.begin():
        run = TrainingRun(
            model_name=f"{task}-small-cnn",
            version="1",
            task=task,
            architecture="small-cnn",
            status=status,
            accuracy=accuracy,
            majority_rate=majority,
            hyperparameters={"classes": ["a", "b"], "image_size": 32},
        )
        metrics = {"test": {"accuracy_ci95": list(ci)}}
        if checksum:
            metrics["model_sha256"] = checksum
        run.metrics = metrics
        session.add(run)
        session.flush()
        key = f"models/run-{run.id}.keras"
        storage.put(key, data)
        run.model_uri = storage.url_for(key)
        return run.id


def test_promote_records_who_when_and_the_checksum_computed_at_promotion(engine, storage):
    run_id = add_run(engine, storage)
    result = promote(engine, storage, run_id, Task.condition, user="ana")
    p = result.promotion
    assert not result.unchanged and result.replaced is None
    assert (p.run_id, p.task, p.alias, p.promoted_by, p.live) == (
        run_id,
        Task.condition,
        "production",
        "ana",
        True,
    )
    assert p.model_sha256 == hashlib.sha256(MODEL_BYTES).hexdigest()
    assert p.checksum_source == "promotion" and not p.forced and p.beats_majority
    assert p.accuracy_ci95 == (0.8, 0.95) and p.majority_rate == 0.4
    # promoting it again changes nothing
    again = promote(engine, storage, run_id, Task.condition, user="bo")
    assert again.unchanged and again.promotion.id == p.id


def test_the_training_checksum_is_verified_when_present(engine, storage):
    good = add_run(engine, storage, checksum=hashlib.sha256(MODEL_BYTES).hexdigest())
    p = promote(engine, storage, good, Task.condition, user="ana").promotion
    assert p.checksum_source == "training"
    tampered = add_run(engine, storage, checksum="0" * 64)
    with pytest.raises(StorageError, match="changed since it was recorded"):
        promote(engine, storage, tampered, Task.condition, user="ana")
    assert [x.run_id for x in live_promotions(engine)] == [good]


def test_a_run_not_beating_the_majority_rate_needs_force(engine, storage):
    # accuracy above the majority rate, but its interval is not: the trainer's definition
    weak = add_run(engine, storage, accuracy=0.5, ci=(0.35, 0.65), majority=0.45)
    with pytest.raises(UsageError, match=r"does not beat its majority-class rate 0\.450") as raised:
        promote(engine, storage, weak, Task.condition, user="ana")
    assert "--force" in raised.value.hint
    assert live_promotions(engine) == []
    p = promote(engine, storage, weak, Task.condition, user="ana", force=True).promotion
    assert p.forced and not p.beats_majority


def test_wrong_task_and_unusable_runs_are_refused(engine, storage):
    run_id = add_run(engine, storage, task="skin-type")
    with pytest.raises(UsageError, match="trained for task 'skin-type', not 'condition'"):
        promote(engine, storage, run_id, Task.condition, user="ana")
    failed = add_run(engine, storage, status="failed")
    with pytest.raises(UsageError, match="is failed"):
        promote(engine, storage, failed, Task.condition, user="ana")
    with pytest.raises(NotFound):
        promote(engine, storage, 999, Task.condition, user="ana")


def test_promoting_another_run_closes_the_previous_and_history_keeps_both(engine, storage):
    first, second = add_run(engine, storage), add_run(engine, storage)
    promote(engine, storage, first, Task.condition, user="ana")
    staging = promote(engine, storage, second, Task.condition, user="ana", alias="staging")
    assert staging.replaced is None  # another alias: both live
    result = promote(engine, storage, second, Task.condition, user="bo")
    assert result.replaced is not None and result.replaced.run_id == first
    assert result.replaced.demoted_by == "bo" and result.replaced.demoted_at is not None
    assert [(p.run_id, p.alias) for p in live_promotions(engine, alias="production")] == [
        (second, "production")
    ]
    assert [(p.run_id, p.alias, p.live) for p in history(engine)] == [
        (second, "production", True),
        (second, "staging", True),
        (first, "production", False),
    ]
    demoted = demote(engine, Task.condition, user="cy")
    assert demoted.run_id == second and demoted.demoted_by == "cy"
    assert [p.alias for p in live_promotions(engine)] == ["staging"]
    with pytest.raises(NotFound, match="No run is promoted for task condition"):
        demote(engine, Task.condition, user="cy")
    with Session(engine) as session:
        assert len(session.scalars(select(ModelPromotion)).all()) == 3  # nothing deleted


def test_api_keys_store_only_a_hash_and_revoke(engine):
    created = create_key(engine, "backend", user="ana")
    assert created.key.startswith("skk_") and len(created.key) > 40
    assert created.info.prefix == created.key[:10]
    with Session(engine) as session:
        row = session.scalars(select(ApiKey)).one()
        stored = " ".join(str(v) for v in (row.name, row.prefix, row.key_sha256, row.created_by))
    assert created.key not in stored and row.key_sha256 == key_hash(created.key)
    assert live_key_hashes(engine) == {key_hash(created.key): "backend"}
    revoked = revoke_key(engine, "backend", user="bo")
    assert revoked.revoked_by == "bo" and live_key_hashes(engine) == {}
    with pytest.raises(NotFound):
        revoke_key(engine, "backend", user="bo")
    # the name is free again once revoked
    create_key(engine, "backend", user="ana")
    assert [k.revoked_at is None for k in list_keys(engine)] == [False, True]


# -- the CLI ------------------------------------------------------------------------------------


def test_model_cli_promote_list_history_demote(cli, engine, settings, storage):
    run_id = add_run(engine, storage)
    weak = add_run(engine, storage, accuracy=0.3, ci=(0.2, 0.4), majority=0.45)
    refused = cli("model", "promote", str(weak), "--task", "condition")
    assert refused.exit_code == 2
    assert "does not beat its majority-class rate" in refused.stderr and "--force" in refused.stderr
    promoted = cli("model", "promote", str(run_id), "--task", "condition")
    assert promoted.exit_code == 0, promoted.stderr
    assert (
        f"run {run_id}" in promoted.stdout
        and "now serves condition as production" in promoted.stdout
    )

    listed = cli("model", "list", "--json")
    assert listed.exit_code == 0
    (row,) = listed.json()
    assert list(row) == [
        "id",
        "task",
        "alias",
        "run_id",
        "model_name",
        "version",
        "architecture",
        "accuracy",
        "accuracy_ci95",
        "majority_rate",
        "beats_majority",
        "model_uri",
        "model_sha256",
        "checksum_source",
        "forced",
        "note",
        "promoted_by",
        "promoted_at",
        "demoted_by",
        "demoted_at",
    ]
    assert (row["run_id"], row["task"], row["promoted_by"]) == (run_id, "condition", "tester")
    human = cli("model", "list", env={"COLUMNS": "200"})
    assert "condition" in human.stdout and "0.900" in human.stdout

    forced = cli("model", "promote", str(weak), "--task", "condition", "--force", "--json")
    assert forced.exit_code == 0 and forced.json()["promotion"]["forced"] is True
    assert "promoted because of --force" in forced.stderr
    assert forced.json()["replaced"]["run_id"] == run_id
    hist = cli("model", "history", "--json").json()
    assert [(p["run_id"], p["demoted_by"]) for p in hist] == [(weak, None), (run_id, "tester")]
    assert cli("model", "demote", "--task", "condition").exit_code == 0
    assert cli("model", "list", "--json").json() == []
    bad_task = cli("model", "promote", str(run_id), "--task", "wrinkles")
    assert bad_task.exit_code == 2 and "skin-type" in bad_task.stderr


def test_api_key_cli_prints_the_key_once(cli, engine):
    created = cli("api-key", "create", "backend")
    assert created.exit_code == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("skk_") and "shown only this once" in created.stderr
    listed = cli("api-key", "list", "--json")
    assert listed.exit_code == 0 and key not in listed.stdout
    (row,) = listed.json()
    assert list(row) == [
        "id",
        "name",
        "prefix",
        "created_by",
        "created_at",
        "revoked_by",
        "revoked_at",
    ]
    assert key not in cli("api-key", "list").stdout
    duplicate = cli("api-key", "create", "backend")
    assert duplicate.exit_code == 1 and "exists already" in duplicate.stderr
    assert cli("api-key", "revoke", "backend").exit_code == 0
    again = cli("api-key", "revoke", "backend")
    assert again.exit_code == 1 and "No live API key" in again.stderr


def test_serve_refuses_no_auth_on_a_public_address(cli):
    result = cli("serve", "--no-auth", "--host", "0.0.0.0")
    assert result.exit_code == 2
    assert "--no-auth is refused with --host 0.0.0.0" in result.stderr
