"""The official MLflow Python client (installed from PyPI by tools/python-env.sh) against a
Ledgerflow server started by conftest.py: experiments and runs round-trip through the REST API.

Every test makes its own uniquely named experiments, since all tests share one server.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.entities import ViewType
from mlflow.exceptions import MlflowException

USER = "ledgerflow-tester"  # conftest sets LOGNAME, which the client records as mlflow.user
UNKNOWN_RUN_ID = "0123456789abcdef0123456789abcdef"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def error_code(excinfo: pytest.ExceptionInfo) -> str:
    return excinfo.value.error_code


@pytest.fixture
def client() -> MlflowClient:
    return MlflowClient()


@pytest.fixture
def experiment_id(client: MlflowClient) -> str:
    return client.create_experiment(unique("exp"))


def now_ms() -> int:
    return int(time.time() * 1000)


# --------------------------------------------------------------------------------------------
# The acceptance flow: fluent API end to end
# --------------------------------------------------------------------------------------------


def test_fluent_flow_round_trips(client: MlflowClient) -> None:
    name = unique("fluent")
    before = now_ms()

    experiment = mlflow.set_experiment(name)
    exp_id = experiment.experiment_id
    assert isinstance(exp_id, str) and exp_id.isdigit() and exp_id != "0"
    assert experiment.name == name
    assert experiment.lifecycle_stage == "active"
    assert experiment.artifact_location == f"mlflow-artifacts:/{exp_id}"
    # set_experiment on an existing name reuses it rather than creating another
    assert mlflow.set_experiment(name).experiment_id == exp_id

    parent = mlflow.start_run(run_name="parent-run")
    parent_id = parent.info.run_id
    assert parent.info.status == "RUNNING"
    mlflow.log_param("learning_rate", 0.01)
    mlflow.log_param("optimizer", "adam")
    mlflow.set_tag("stage", "training")

    child = mlflow.start_run(run_name="child-run", nested=True)
    child_id = child.info.run_id
    assert child_id != parent_id
    mlflow.log_param("fold", 3)
    mlflow.set_tag("kind", "cv-fold")
    mlflow.end_run()
    assert mlflow.active_run().info.run_id == parent_id  # back to the parent

    mlflow.end_run()
    assert mlflow.active_run() is None
    after = now_ms()

    p = mlflow.get_run(parent_id)
    c = mlflow.get_run(child_id)

    for run, run_id, run_name in ((p, parent_id, "parent-run"), (c, child_id, "child-run")):
        assert run.info.run_id == run_id
        assert len(run_id) == 32 and run_id == run_id.lower()
        assert run.info.experiment_id == exp_id
        assert run.info.run_name == run_name
        assert run.info.status == "FINISHED"
        assert run.info.lifecycle_stage == "active"
        assert run.info.user_id == USER
        assert run.info.artifact_uri == f"mlflow-artifacts:/{exp_id}/{run_id}/artifacts"
        assert before <= run.info.start_time <= run.info.end_time <= after
        assert run.data.tags["mlflow.runName"] == run_name
        assert run.data.tags["mlflow.user"] == USER
        assert run.data.tags["mlflow.source.type"] == "LOCAL"
        assert run.data.metrics == {}

    assert p.data.params == {"learning_rate": "0.01", "optimizer": "adam"}
    assert p.data.tags["stage"] == "training"
    assert "mlflow.parentRunId" not in p.data.tags
    assert "kind" not in p.data.tags

    assert c.data.params == {"fold": "3"}
    assert c.data.tags["kind"] == "cv-fold"
    assert c.data.tags["mlflow.parentRunId"] == parent_id
    assert "stage" not in c.data.tags
    assert c.info.start_time >= p.info.start_time
    assert c.info.end_time <= p.info.end_time

    found = mlflow.search_experiments(filter_string=f"name = '{name}'")
    assert [e.experiment_id for e in found] == [exp_id]
    assert found[0].name == name
    assert found[0].lifecycle_stage == "active"

    # delete_run / restore_run: the run is soft-deleted and comes back intact
    mlflow.delete_run(child_id)
    deleted = mlflow.get_run(child_id)
    assert deleted.info.lifecycle_stage == "deleted"
    assert deleted.info.status == "FINISHED"
    assert mlflow.get_run(parent_id).info.lifecycle_stage == "active"

    client.restore_run(child_id)
    restored = mlflow.get_run(child_id)
    assert restored.info.lifecycle_stage == "active"
    assert restored.data.params == c.data.params
    assert restored.data.tags == c.data.tags
    assert restored.info.end_time == c.info.end_time


def test_with_block_marks_failed_run(experiment_id: str) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with mlflow.start_run(experiment_id=experiment_id) as run:
            raise RuntimeError("boom")
    got = mlflow.get_run(run.info.run_id)
    assert got.info.status == "FAILED"
    assert got.info.end_time is not None


def test_end_run_with_explicit_status(experiment_id: str) -> None:
    run = mlflow.start_run(experiment_id=experiment_id)
    mlflow.end_run(status="KILLED")
    assert mlflow.get_run(run.info.run_id).info.status == "KILLED"


def test_resume_finished_run(experiment_id: str) -> None:
    # set_experiment(experiment_id=...) only reads the experiment; resuming needs it active
    assert mlflow.set_experiment(experiment_id=experiment_id).experiment_id == experiment_id
    with mlflow.start_run(run_name="resumable") as run:
        mlflow.log_param("a", "1")
    run_id = run.info.run_id
    first_end = mlflow.get_run(run_id).info.end_time

    with mlflow.start_run(run_id=run_id) as resumed:
        assert resumed.info.run_id == run_id
        during = mlflow.get_run(run_id)
        assert during.info.status == "RUNNING"
        assert during.info.run_name == "resumable"
        mlflow.log_param("b", "2")
    done = mlflow.get_run(run_id)
    assert done.info.status == "FINISHED"
    assert done.info.end_time >= first_end
    assert done.data.params == {"a": "1", "b": "2"}


def test_run_in_default_experiment(client: MlflowClient) -> None:
    run = client.create_run("0")
    assert run.info.experiment_id == "0"
    assert run.info.artifact_uri == f"mlflow-artifacts:/0/{run.info.run_id}/artifacts"
    # without a run name the server makes one up and records it as the tag too
    assert run.info.run_name
    assert run.data.tags["mlflow.runName"] == run.info.run_name
    client.set_terminated(run.info.run_id)


# --------------------------------------------------------------------------------------------
# Experiments through MlflowClient
# --------------------------------------------------------------------------------------------


def test_default_experiment_exists(client: MlflowClient) -> None:
    default = client.get_experiment("0")
    assert default.experiment_id == "0"
    assert default.name == "Default"
    assert default.lifecycle_stage == "active"
    assert default.artifact_location == "mlflow-artifacts:/0"
    assert client.get_experiment_by_name("Default").experiment_id == "0"


def test_create_experiment_with_tags_and_read_it_back(client: MlflowClient) -> None:
    name = unique("tagged")
    before = now_ms()
    exp_id = client.create_experiment(name, tags={"team": "vision", "priority": "high"})
    after = now_ms()
    assert isinstance(exp_id, str) and exp_id.isdigit()

    exp = client.get_experiment(exp_id)
    assert exp.experiment_id == exp_id
    assert exp.name == name
    assert exp.lifecycle_stage == "active"
    assert exp.artifact_location == f"mlflow-artifacts:/{exp_id}"
    assert exp.tags == {"team": "vision", "priority": "high"}
    assert before <= exp.creation_time <= after
    assert exp.last_update_time >= exp.creation_time

    by_name = client.get_experiment_by_name(name)
    assert by_name.experiment_id == exp_id
    assert by_name.tags == exp.tags
    assert client.get_experiment_by_name(unique("no-such-experiment")) is None


def test_experiment_ids_are_sequential(client: MlflowClient) -> None:
    a = int(client.create_experiment(unique("seq")))
    b = int(client.create_experiment(unique("seq")))
    assert b == a + 1


def test_rename_experiment(client: MlflowClient) -> None:
    old, new = unique("before"), unique("after")
    exp_id = client.create_experiment(old)
    created = client.get_experiment(exp_id)

    client.rename_experiment(exp_id, new)

    renamed = client.get_experiment(exp_id)
    assert renamed.name == new
    assert renamed.last_update_time >= created.last_update_time
    assert client.get_experiment_by_name(new).experiment_id == exp_id
    assert client.get_experiment_by_name(old) is None
    # the old name is free again
    assert client.create_experiment(old) != exp_id


def test_set_and_delete_experiment_tags(client: MlflowClient, experiment_id: str) -> None:
    client.set_experiment_tag(experiment_id, "owner", "alice")
    client.set_experiment_tag(experiment_id, "note", "first")
    client.set_experiment_tag(experiment_id, "note", "second")  # overwrites
    assert client.get_experiment(experiment_id).tags == {"owner": "alice", "note": "second"}

    client.delete_experiment_tag(experiment_id, "owner")
    assert client.get_experiment(experiment_id).tags == {"note": "second"}

    with pytest.raises(MlflowException) as exc:
        client.delete_experiment_tag(experiment_id, "owner")
    assert error_code(exc) == "RESOURCE_DOES_NOT_EXIST"


def test_delete_and_restore_experiment_cascades_to_runs(client: MlflowClient) -> None:
    name = unique("doomed")
    exp_id = client.create_experiment(name)
    run_ids = [client.create_run(exp_id).info.run_id for _ in range(2)]
    client.log_param(run_ids[0], "p", "v")

    client.delete_experiment(exp_id)

    exp = client.get_experiment(exp_id)  # deleted experiments can still be read
    assert exp.lifecycle_stage == "deleted"
    assert client.get_experiment_by_name(name).lifecycle_stage == "deleted"
    for run_id in run_ids:
        assert client.get_run(run_id).info.lifecycle_stage == "deleted"
    # the fluent API refuses to make a deleted experiment active
    with pytest.raises(MlflowException, match="deleted"):
        mlflow.set_experiment(name)
    with pytest.raises(MlflowException) as exc:
        client.create_run(exp_id)
    assert error_code(exc) == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as exc:
        client.set_experiment_tag(exp_id, "k", "v")
    assert error_code(exc) == "INVALID_PARAMETER_VALUE"
    # a deleted experiment keeps its name
    with pytest.raises(MlflowException) as exc:
        client.create_experiment(name)
    assert error_code(exc) == "RESOURCE_ALREADY_EXISTS"

    client.restore_experiment(exp_id)

    assert client.get_experiment(exp_id).lifecycle_stage == "active"
    for run_id in run_ids:
        assert client.get_run(run_id).info.lifecycle_stage == "active"
    assert client.get_run(run_ids[0]).data.params == {"p": "v"}
    assert mlflow.set_experiment(name).experiment_id == exp_id


def test_duplicate_experiment_name_is_rejected(client: MlflowClient) -> None:
    name = unique("dup")
    client.create_experiment(name)
    with pytest.raises(MlflowException) as exc:
        client.create_experiment(name)
    assert error_code(exc) == "RESOURCE_ALREADY_EXISTS"


def test_unknown_experiment(client: MlflowClient) -> None:
    with pytest.raises(MlflowException) as exc:
        client.get_experiment("987654321")
    assert error_code(exc) == "RESOURCE_DOES_NOT_EXIST"


# --------------------------------------------------------------------------------------------
# search_experiments
# --------------------------------------------------------------------------------------------


@pytest.fixture
def search_family(client: MlflowClient) -> tuple[str, dict[str, str]]:
    """Five experiments sharing a unique name prefix; returns (prefix, name -> id)."""
    prefix = unique("srch")
    specs = {
        f"{prefix}-alpha": {"color": "red", "size": "s"},
        f"{prefix}-beta": {"color": "blue"},
        f"{prefix}-gamma": {"color": "red", "size": "l"},
        f"{prefix}-delta": {},
        f"{prefix}-Epsilon": {"color": "RED"},
    }
    ids = {name: client.create_experiment(name, tags=tags) for name, tags in specs.items()}
    client.create_experiment(unique("other-srch"), tags={"color": "red"})  # outside the family
    return prefix, ids


def names(experiments) -> list[str]:
    return [e.name for e in experiments]


def test_search_experiments_filter_by_name(client: MlflowClient, search_family) -> None:
    prefix, ids = search_family
    found = client.search_experiments(filter_string=f"name LIKE '{prefix}%'")
    assert sorted(names(found)) == sorted(ids)
    assert {e.experiment_id for e in found} == set(ids.values())

    # LIKE is case-sensitive, ILIKE is not
    assert names(client.search_experiments(filter_string=f"name LIKE '{prefix}-e%'")) == []
    assert names(client.search_experiments(filter_string=f"name ILIKE '{prefix.upper()}-e%'")) == [f"{prefix}-Epsilon"]
    assert names(client.search_experiments(filter_string=f"name = '{prefix}-beta'")) == [f"{prefix}-beta"]
    found = client.search_experiments(filter_string=f"name LIKE '{prefix}%' AND name != '{prefix}-beta'")
    assert sorted(names(found)) == sorted(n for n in ids if n != f"{prefix}-beta")


def test_search_experiments_filter_by_tag(client: MlflowClient, search_family) -> None:
    prefix, _ = search_family
    in_family = f"name LIKE '{prefix}%'"
    found = client.search_experiments(filter_string=f"tags.color = 'red' AND {in_family}")
    assert sorted(names(found)) == [f"{prefix}-alpha", f"{prefix}-gamma"]
    assert all(e.tags["color"] == "red" for e in found)

    found = client.search_experiments(filter_string=f"tags.color ILIKE 'red' AND {in_family}")
    assert sorted(names(found)) == sorted([f"{prefix}-alpha", f"{prefix}-gamma", f"{prefix}-Epsilon"])

    found = client.search_experiments(filter_string=f"tags.size = 'l' AND tags.color = 'red' AND {in_family}")
    assert names(found) == [f"{prefix}-gamma"]

    # an experiment without the tag never matches, not even `!=`
    found = client.search_experiments(filter_string=f"tags.size != 's' AND {in_family}")
    assert names(found) == [f"{prefix}-gamma"]


def test_search_experiments_order_by(client: MlflowClient, search_family) -> None:
    prefix, ids = search_family
    in_family = f"name LIKE '{prefix}%'"
    asc = names(client.search_experiments(filter_string=in_family, order_by=["name ASC"]))
    assert asc == sorted(ids)
    desc = names(client.search_experiments(filter_string=in_family, order_by=["name DESC"]))
    assert desc == sorted(ids, reverse=True)

    by_id = client.search_experiments(filter_string=in_family, order_by=["experiment_id DESC"])
    assert [int(e.experiment_id) for e in by_id] == sorted((int(i) for i in ids.values()), reverse=True)

    with pytest.raises(MlflowException) as exc:
        client.search_experiments(order_by=["no_such_column"])
    assert error_code(exc) == "INVALID_PARAMETER_VALUE"


def test_search_experiments_view_type(client: MlflowClient, search_family) -> None:
    prefix, ids = search_family
    in_family = f"name LIKE '{prefix}%'"
    gone = f"{prefix}-beta"
    client.delete_experiment(ids[gone])

    active = names(client.search_experiments(filter_string=in_family))
    assert sorted(active) == sorted(n for n in ids if n != gone)
    active_only = client.search_experiments(view_type=ViewType.ACTIVE_ONLY, filter_string=in_family)
    assert sorted(names(active_only)) == sorted(active)
    deleted = client.search_experiments(view_type=ViewType.DELETED_ONLY, filter_string=in_family)
    assert names(deleted) == [gone]
    assert deleted[0].lifecycle_stage == "deleted"
    everything = client.search_experiments(view_type=ViewType.ALL, filter_string=in_family)
    assert sorted(names(everything)) == sorted(ids)

    # Default is always there unless filtered away
    assert "0" in {e.experiment_id for e in client.search_experiments()}


def test_search_experiments_paging(client: MlflowClient, search_family) -> None:
    prefix, ids = search_family
    seen: list[str] = []
    pages = 0
    token = None
    while True:
        page = client.search_experiments(
            filter_string=f"name LIKE '{prefix}%'", order_by=["name ASC"], max_results=2, page_token=token
        )
        pages += 1
        assert len(page) <= 2
        seen.extend(names(page))
        token = page.token
        if not token:
            break
        assert pages < 10, "paging does not end"
    assert pages == 3  # 2 + 2 + 1
    assert seen == sorted(ids)

    exact = client.search_experiments(filter_string=f"name LIKE '{prefix}%'", max_results=5)
    assert len(exact) == 5 and not exact.token

    with pytest.raises(MlflowException) as exc:
        client.search_experiments(page_token="not-a-valid-token!")
    assert error_code(exc) == "INVALID_PARAMETER_VALUE"


def test_search_experiments_rejects_bad_filter(client: MlflowClient) -> None:
    with pytest.raises(MlflowException) as exc:
        client.search_experiments(filter_string="name = 'a' OR name = 'b'")
    assert error_code(exc) == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as exc:
        client.search_experiments(filter_string="no_such_attribute = 'x'")
    assert error_code(exc) == "INVALID_PARAMETER_VALUE"


# --------------------------------------------------------------------------------------------
# Runs through MlflowClient
# --------------------------------------------------------------------------------------------


def test_create_run_set_terminated_and_rename(client: MlflowClient, experiment_id: str) -> None:
    start = now_ms() - 5000
    run = client.create_run(experiment_id, start_time=start, tags={"source": "unit"}, run_name="first-name")
    run_id = run.info.run_id
    assert run.info.status == "RUNNING"
    assert run.info.start_time == start
    assert run.info.end_time is None
    assert run.info.run_name == "first-name"
    assert run.data.tags["source"] == "unit"
    assert run.data.tags["mlflow.runName"] == "first-name"

    end = start + 1234
    client.set_terminated(run_id, status="FAILED", end_time=end)
    got = client.get_run(run_id)
    assert got.info.status == "FAILED"
    assert got.info.end_time == end

    client.update_run(run_id, name="second-name")
    got = client.get_run(run_id)
    assert got.info.run_name == "second-name"
    assert got.data.tags["mlflow.runName"] == "second-name"
    assert got.info.status == "FAILED"  # untouched by a rename
    assert got.info.end_time == end

    client.update_run(run_id, status="FINISHED")
    got = client.get_run(run_id)
    assert got.info.status == "FINISHED"
    assert got.info.run_name == "second-name"


def test_set_and_delete_run_tags(client: MlflowClient, experiment_id: str) -> None:
    run_id = client.create_run(experiment_id).info.run_id
    client.set_tag(run_id, "keep", "yes")
    client.set_tag(run_id, "drop", "soon")
    client.set_tag(run_id, "keep", "still yes")  # tags overwrite
    tags = client.get_run(run_id).data.tags
    assert tags["keep"] == "still yes"
    assert tags["drop"] == "soon"

    client.delete_tag(run_id, "drop")
    tags = client.get_run(run_id).data.tags
    assert "drop" not in tags
    assert tags["keep"] == "still yes"

    with pytest.raises(MlflowException) as exc:
        client.delete_tag(run_id, "drop")
    assert error_code(exc) == "RESOURCE_DOES_NOT_EXIST"


def test_param_values_are_immutable(client: MlflowClient, experiment_id: str) -> None:
    run_id = client.create_run(experiment_id).info.run_id
    client.log_param(run_id, "batch_size", 32)
    client.log_param(run_id, "batch_size", "32")  # the same value again is fine

    with pytest.raises(MlflowException) as exc:
        client.log_param(run_id, "batch_size", 64)
    assert error_code(exc) == "INVALID_PARAMETER_VALUE"

    assert client.get_run(run_id).data.params == {"batch_size": "32"}


def test_param_and_tag_values_keep_unicode_and_long_text(client: MlflowClient, experiment_id: str) -> None:
    run_id = client.create_run(experiment_id).info.run_id
    text = "Grüße, 世界 — \"quoted\" 'single' \\ back\nnew line"
    long_value = "x" * 6000
    client.log_param(run_id, "unicode", text)
    client.log_param(run_id, "long", long_value)
    client.log_param(run_id, "empty", "")
    client.set_tag(run_id, "unicode", text)
    got = client.get_run(run_id).data
    assert got.params == {"unicode": text, "long": long_value, "empty": ""}
    assert got.tags["unicode"] == text


def test_invalid_param_key_is_rejected(client: MlflowClient, experiment_id: str) -> None:
    run_id = client.create_run(experiment_id).info.run_id
    with pytest.raises(MlflowException) as exc:
        client.log_param(run_id, "../escape", "v")
    assert error_code(exc) == "INVALID_PARAMETER_VALUE"
    assert client.get_run(run_id).data.params == {}


def test_writes_to_deleted_run_are_rejected(client: MlflowClient, experiment_id: str) -> None:
    run_id = client.create_run(experiment_id).info.run_id
    client.log_param(run_id, "before", "delete")
    client.set_tag(run_id, "t", "v")
    client.delete_run(run_id)

    writes = [
        lambda: client.log_param(run_id, "after", "delete"),
        lambda: client.set_tag(run_id, "t2", "v"),
        lambda: client.delete_tag(run_id, "t"),
        lambda: client.set_terminated(run_id),
        lambda: client.update_run(run_id, name="new-name"),
    ]
    for write in writes:
        with pytest.raises(MlflowException) as exc:
            write()
        assert error_code(exc) == "INVALID_PARAMETER_VALUE"

    got = client.get_run(run_id)  # nothing changed
    assert got.info.lifecycle_stage == "deleted"
    assert got.info.status == "RUNNING"
    assert got.data.params == {"before": "delete"}
    assert got.data.tags["t"] == "v"
    assert "t2" not in got.data.tags

    client.restore_run(run_id)
    client.log_param(run_id, "after", "restore")
    assert client.get_run(run_id).data.params == {"before": "delete", "after": "restore"}


def test_unknown_run(client: MlflowClient) -> None:
    for call in (
        lambda: client.get_run(UNKNOWN_RUN_ID),
        lambda: client.delete_run(UNKNOWN_RUN_ID),
        lambda: client.restore_run(UNKNOWN_RUN_ID),
        lambda: client.log_param(UNKNOWN_RUN_ID, "k", "v"),
        lambda: client.set_tag(UNKNOWN_RUN_ID, "k", "v"),
    ):
        with pytest.raises(MlflowException) as exc:
            call()
        assert error_code(exc) == "RESOURCE_DOES_NOT_EXIST"


def test_run_in_unknown_experiment(client: MlflowClient) -> None:
    with pytest.raises(MlflowException) as exc:
        client.create_run("987654321")
    assert error_code(exc) == "RESOURCE_DOES_NOT_EXIST"


# --------------------------------------------------------------------------------------------
# HTTP status codes: the client retries 5xx answers, so caller mistakes must be 4xx
# --------------------------------------------------------------------------------------------


def _http(url: str, method: str = "GET", body: dict | None = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            return res.status, json.loads(res.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def test_error_statuses_on_the_wire(tracking_uri: str) -> None:
    api = f"{tracking_uri}/api/2.0/mlflow"
    status, body = _http(f"{api}/runs/get?run_id={UNKNOWN_RUN_ID}")
    assert (status, body["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")

    name = unique("wire")
    status, body = _http(f"{api}/experiments/create", "POST", {"name": name})
    assert status == 200 and body["experiment_id"].isdigit()
    status, body = _http(f"{api}/experiments/create", "POST", {"name": name})
    assert (status, body["error_code"]) == (400, "RESOURCE_ALREADY_EXISTS")

    status, body = _http(f"{api}/runs/create", "POST", {"experiment_id": "0"})
    run_id = body["run"]["info"]["run_id"]
    assert _http(f"{api}/runs/log-parameter", "POST", {"run_id": run_id, "key": "k", "value": "1"}) == (200, {})
    status, body = _http(f"{api}/runs/log-parameter", "POST", {"run_id": run_id, "key": "k", "value": "2"})
    assert (status, body["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
